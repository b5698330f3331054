"""Shared test configuration: the `gpu` marker and the GPU sizes passed to each notebook."""
import pytest

# Parameters a GPU run passes to each notebook's `parameters` cell (CPU runs use the notebook's own
# defaults). Notebooks not named here get {"device": "cuda"}.
GPU_PARAMETERS = {
    "00_ssd": {"device": "cuda"},
}


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped (and reported) elsewhere")
