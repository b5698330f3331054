"""Execute notebooks on this machine and store their outputs in nbs/, so that the docs show them.

    python tests/fill_outputs.py [nbs/00_ssd.ipynb ...]     (default: every notebook)
    python tests/fill_outputs.py --gpu-from DIR [nbs/...]   (GPU cells' outputs from a GPU run)

CPU cells run here with the notebook's own parameters (a notebook with an `out_dir` parameter gets a fresh, empty
folder, so its stored timings are never those of a reused run); cells flagged `#| gpu` keep whatever outputs they
had. Progress bars (tqdm's lines on stderr) are dropped from what is stored: frozen at the moment of saving, they
say nothing true to a reader. Their outputs come from a GPU run: `THINKFAST_KEEP_EXECUTED=DIR pytest tests -m gpu` on the GPU
machine keeps the executed notebooks in DIR, and `--gpu-from DIR` copies the GPU cells' outputs from them.
Finish with `nbdev_clean`.
"""
import re
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).parent))
from test_notebooks import NBS, is_gpu_cell, parameter_cells  # noqa: E402

BAR = re.compile(r"^[^\n|]*\d+%\|[^\n]*\|[^\n]*\][^\n]*$")      # a tqdm line: `desc:  40%|####      | 2/5 [00:01<...]`


def drop_bars(outputs: list) -> list:
    "Outputs without tqdm's progress lines and notebook progress widgets (a stream left empty is dropped)."
    kept = []
    for o in outputs:
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {}): continue
        if o.get("output_type") == "stream":
            lines = [l for l in re.split(r"[\r\n]", o["text"]) if l.strip() and not BAR.match(l.strip())]
            if not lines: continue
            o["text"] = "\n".join(lines) + "\n"
        kept.append(o)
    return kept


def fill(nb_path: Path):
    import papermill as pm
    nb = nbformat.read(nb_path, as_version=4)
    cpu = nbformat.read(nb_path, as_version=4)
    cpu.cells = [c for c in cpu.cells if not is_gpu_cell(c)]
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "in.ipynb", Path(d) / "out.ipynb"
        nbformat.write(cpu, src)
        fresh = any(re.match(r"\s*out_dir\s*=", l) for c in parameter_cells(cpu) for l in c.source.splitlines())
        if fresh: (Path(d) / "out").mkdir()
        pm.execute_notebook(str(src), str(out), kernel_name="python3", cwd=str(nb_path.parent), progress_bar=False,
                            parameters=dict(out_dir=str(Path(d) / "out")) if fresh else {})
        done = {c.id: c for c in nbformat.read(out, as_version=4).cells}
    for c in nb.cells:
        if c.cell_type == "code" and c.id in done:
            c.outputs, c.execution_count = drop_bars(done[c.id].outputs), None
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
