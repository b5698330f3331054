"""Execute notebooks on this machine and store their outputs in nbs/, so that the docs show them.

    python tests/fill_outputs.py [nbs/00_ssd.ipynb ...]     (default: every notebook)
    python tests/fill_outputs.py --gpu-from DIR [nbs/...]   (GPU cells' outputs from a GPU run)

CPU cells run here with the notebook's own parameters; cells flagged `#| gpu` keep whatever outputs they
had. Their outputs come from a GPU run: `THINKFAST_KEEP_EXECUTED=DIR pytest tests -m gpu` on the GPU
machine keeps the executed notebooks in DIR, and `--gpu-from DIR` copies the GPU cells' outputs from them.
Finish with `nbdev_clean`.
"""
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from test_notebooks import NBS, is_gpu_cell  # noqa: E402


def fill(nb_path: Path):
    import papermill as pm
    nb = nbformat.read(nb_path, as_version=4)
    cpu = nbformat.read(nb_path, as_version=4)
    cpu.cells = [c for c in cpu.cells if not is_gpu_cell(c)]
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.ipynb", Path(d) / "out.ipynb"
        nbformat.write(cpu, src)
        pm.execute_notebook(str(src), str(out), kernel_name="python3", cwd=str(nb_path.parent), progress_bar=False)
        done = {c.id: c for c in nbformat.read(out, as_version=4).cells}
    for c in nb.cells:
        if c.cell_type == "code" and c.id in done:
            c.outputs, c.execution_count = done[c.id].outputs, None
    nbformat.write(nb, nb_path)
    print(f"filled {nb_path}")


def fill_gpu(nb_path: Path, executed_dir: Path):
    src = executed_dir / f"{nb_path.stem}.gpu.ipynb"
    if not src.exists(): return print(f"no GPU run of {nb_path.name} in {executed_dir}")
    done = {c.id: c for c in nbformat.read(src, as_version=4).cells}
    nb = nbformat.read(nb_path, as_version=4)
    n = 0
    for c in nb.cells:
        if is_gpu_cell(c) and c.id in done:
            c.outputs, c.execution_count, n = done[c.id].outputs, None, n + 1
    nbformat.write(nb, nb_path)
    print(f"{nb_path.name}: GPU outputs of {n} cell(s) from {src}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--gpu-from"]:
        for p in ([Path(a).resolve() for a in args[2:]] or NBS): fill_gpu(p, Path(args[1]))
    else:
        for p in ([Path(a).resolve() for a in args] or NBS): fill(p)
