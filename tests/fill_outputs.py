"""Execute notebooks on this machine and store their outputs in nbs/, so that the docs show them.

    python tests/fill_outputs.py [nbs/00_ssd.ipynb ...]     (default: every notebook)

CPU cells run with the notebook's own parameters; cells flagged `#| gpu` keep whatever outputs they had
(run the notebook on a GPU machine to refresh those). Finish with `nbdev_clean`.
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


if __name__ == "__main__":
    for p in ([Path(a).resolve() for a in sys.argv[1:]] or NBS): fill(p)
