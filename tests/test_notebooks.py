"""Every notebook in nbs/ is a test: papermill executes it in a fresh kernel.

* `test_notebook_cpu[NAME]` runs the notebook with its own (CPU-sized) parameters, leaving out the cells
  flagged `#| gpu`.
* `test_notebook_gpu[NAME]` runs the whole notebook, GPU cells included, with the GPU parameters from
  conftest.py. It is skipped, with the reason, where CUDA is absent or the notebook has no GPU cells.
  On the GPU machine: `PYTHONPATH=$PWD python3 -m pytest tests -m gpu` (see README).

A failing cell fails the test with that cell's source and traceback in the message. With
THINKFAST_KEEP_EXECUTED=DIR set, each executed notebook is kept in DIR (`NAME.cpu.ipynb`, `NAME.gpu.ipynb`);
`python tests/fill_outputs.py --gpu-from DIR` then stores the GPU cells' outputs in nbs/ for the docs.
"""
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import GPU_PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / "nbs").glob("*.ipynb"))
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GPU_FLAG = re.compile(r"^\s*#\|\s*gpu\s*$", re.M)


def is_gpu_cell(cell) -> bool:
    "A code cell whose directives (leading `#|` lines) include the `gpu` test flag."
    if cell.cell_type != "code": return False
    head = []
    for line in cell.source.splitlines():
        if not line.strip().startswith("#|"): break
        head.append(line)
    return bool(_GPU_FLAG.search("\n".join(head)))


def parameter_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def failure_message(nb_path: Path, out_nb) -> str:
    "The source and traceback of the first failed cell of an executed notebook."
    for i, cell in enumerate(out_nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
                return (f"{nb_path.name}: cell {i} failed\n--- cell source ---\n{cell.source}\n"
                        f"--- traceback ---\n{tb}")
    return f"{nb_path.name}: execution failed, but no cell holds an error output"


def run_notebook(nb_path: Path, tmp_path: Path, parameters: dict, gpu: bool):
    import papermill as pm
    nb = nbformat.read(nb_path, as_version=4)
    if not gpu: nb.cells = [c for c in nb.cells if not is_gpu_cell(c)]
    src, out = tmp_path / nb_path.name, tmp_path / f"executed-{nb_path.name}"
    nbformat.write(nb, src)
    if "out_dir" not in parameters and any(re.match(r"\s*out_dir\s*=", l) for c in parameter_cells(nb) for l in c.source.splitlines()):
        (tmp_path / "out").mkdir()
        parameters = dict(parameters, out_dir=str(tmp_path / "out"))   # a fresh, empty run folder: never an earlier test's
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env_path}" if env_path else str(ROOT)
    try:
        pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                            cwd=str(nb_path.parent), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError:
        pytest.fail(failure_message(nb_path, nbformat.read(out, as_version=4)), pytrace=False)
    finally:
        os.environ["PYTHONPATH"] = env_path
        if not env_path: del os.environ["PYTHONPATH"]
        keep = os.environ.get("THINKFAST_KEEP_EXECUTED")   # a folder: keep the executed notebook there
        if keep and out.exists():
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(out, Path(keep) / f"{nb_path.stem}.{'gpu' if gpu else 'cpu'}.ipynb")
    return nbformat.read(out, as_version=4)


def test_there_are_notebooks():
    assert NBS, "no notebooks found in nbs/"


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_one_parameters_cell(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    assert len(parameter_cells(nb)) == 1, f"{nb_path.name}: needs exactly one cell tagged 'parameters'"


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_notebook_cpu(nb_path, tmp_path):
    run_notebook(nb_path, tmp_path, {}, gpu=False)


@pytest.mark.gpu
@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_notebook_gpu(nb_path, tmp_path):
    n_gpu = sum(map(is_gpu_cell, nbformat.read(nb_path, as_version=4).cells))
    if n_gpu == 0: pytest.skip(f"{nb_path.name} has no GPU cells")
    import torch
    if not torch.cuda.is_available():
        pytest.skip(f"{nb_path.name}: {n_gpu} GPU cell(s) need CUDA, which is not available here")
    run_notebook(nb_path, tmp_path, GPU_PARAMETERS.get(nb_path.stem, {"device": "cuda"}), gpu=True)


def test_failure_message_names_cell_and_traceback(tmp_path):
    "The harness itself: a notebook with a failing cell fails with that cell's source and traceback."
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("#| gpu\nraise SystemError('gpu cell ran')"),
        nbformat.v4.new_code_cell("y = x + 1\nassert y == 3, 'boom'"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    (tmp_path / "run").mkdir()
    with pytest.raises(pytest.fail.Exception) as e:
        run_notebook(path, tmp_path / "run", {}, gpu=False)
    msg = str(e.value)
    assert "failed" in msg and "assert y == 3, 'boom'" in msg and "AssertionError: boom" in msg
    assert "gpu cell ran" not in msg  # the GPU cell was left out on this CPU run
