"""Shared test configuration: the `gpu` marker and the GPU sizes passed to each notebook."""
import os

import pytest
import torch

# Without CUDA, Triton kernels run in Triton's interpreter (tests/test_sampler.py). The variable must be set before
# anything imports triton: triton's own library functions are made interpreted or compiled at its import.
if not torch.cuda.is_available(): os.environ.setdefault("TRITON_INTERPRET", "1")

# Parameters a GPU run passes to each notebook's `parameters` cell (CPU runs use the notebook's own
# defaults). Notebooks not named here get {"device": "cuda"}.
GPU_PARAMETERS = {
    "00_ssd": {"device": "cuda"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped (and reported) elsewhere")
