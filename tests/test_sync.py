"""The notebooks are the source: the library, clean notebooks and the README must follow from them."""
import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
import readme  # noqa: E402


@pytest.fixture
def repo_copy(tmp_path):
    "The files nbdev reads and writes, copied so that the checks cannot touch the real tree."
    for name in ("nbs", "thinkfast"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    for name in ("settings.ini", "setup.py"): shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _nbdev(cwd: Path, call: str):
    subprocess.run([sys.executable, "-c", call], cwd=cwd, check=True, capture_output=True, text=True)


def _tree_diff(a: Path, b: Path, pattern: str):
    fa = {p.relative_to(a) for p in a.rglob(pattern) if "__pycache__" not in p.parts}
    fb = {p.relative_to(b) for p in b.rglob(pattern) if "__pycache__" not in p.parts}
    changed = [str(p) for p in sorted(fa & fb) if not filecmp.cmp(a / p, b / p, shallow=False)]
    return changed + [f"only in repo: {p}" for p in sorted(fa - fb)] + [f"new after nbdev: {p}" for p in sorted(fb - fa)]


def test_nbdev_export_leaves_library_unchanged(repo_copy):
    _nbdev(repo_copy, "from nbdev.doclinks import nbdev_export; nbdev_export()")
    diff = _tree_diff(ROOT / "thinkfast", repo_copy / "thinkfast", "*.py")
    assert not diff, f"nbdev_export changed thinkfast/: {diff}. Run nbdev_export and commit."


def test_nbdev_clean_leaves_notebooks_unchanged(repo_copy):
    _nbdev(repo_copy, "from nbdev.clean import nbdev_clean; nbdev_clean()")
    diff = _tree_diff(ROOT / "nbs", repo_copy / "nbs", "*.ipynb")
    assert not diff, f"nbdev_clean changed notebooks: {diff}. Run nbdev_clean and commit."


def test_readme_is_generated_from_index():
    assert (ROOT / "README.md").read_text(encoding="utf-8") == readme.render(), \
        "README.md is not what nbs/index.ipynb generates: run `python tests/readme.py`"


def test_readme_renderer_drops_hidden_cells_and_directives(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\n> summary"),
        nbformat.v4.new_code_cell("#| hide\nsecret = 1"),
        nbformat.v4.new_code_cell("#| echo: true\nprint('hi')", outputs=[nbformat.v4.new_output("stream", text="hi\n")]),
    ])
    nbformat.write(nb, tmp_path / "index.ipynb")
    md = readme.render(tmp_path / "index.ipynb")
    assert "# Title" in md and "secret" not in md and "#|" not in md
    assert "```python\nprint('hi')\n```" in md and "```\nhi\n```" in md
