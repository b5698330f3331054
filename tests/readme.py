"""Render README.md from nbs/index.ipynb without Quarto.

nbdev_readme renders the README with Quarto, which cannot be installed on this project's machines.
This script renders the same notebook to GitHub markdown with nbformat alone: markdown cells as they
are, code cells (minus nbdev `#|` directives; `#| hide` cells dropped) as fenced Python with their
text outputs, and `text/markdown` outputs (IPython's `Markdown`, which the home page displays its measured
numbers with) as markdown, not fenced. Run `python tests/readme.py` after editing nbs/index.ipynb;
tests/test_sync.py checks that README.md is what this produces. Where Quarto exists, `nbdev_readme` still
works as usual.
"""
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
HEADER = "<!-- Generated from nbs/index.ipynb by `python tests/readme.py`: edit the notebook, not this file. -->\n\n"


def _directives(source: str):
    lines = source.splitlines()
    n = 0
    while n < len(lines) and lines[n].strip().startswith("#|"): n += 1
    return [l.strip()[2:].strip() for l in lines[:n]], "\n".join(lines[n:]).strip("\n")


def render(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    nb = nbformat.read(nb_path, as_version=4)
    parts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source.strip("\n"))
        elif cell.cell_type == "code":
            directives, code = _directives(cell.source)
            if any(d.split(":")[0].strip() in ("hide", "exporti") for d in directives): continue
            if code and not any(d.replace(" ", "") == "echo:false" for d in directives): parts.append(f"```python\n{code}\n```")
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                if "image/png" in data: continue                         # figures: on the docs site, not in the README
                if "text/markdown" in data:                              # displayed Markdown reads as the page's own text
                    md = data["text/markdown"]
                    parts.append(("".join(md) if isinstance(md, list) else md).strip("\n"))
                    continue
                text = out.get("text") or out.get("data", {}).get("text/plain")
                if text: parts.append("```\n" + ("".join(text) if isinstance(text, list) else text).rstrip("\n") + "\n```")
    return HEADER + "\n\n".join(p for p in parts if p) + "\n"


if __name__ == "__main__":
    out = ROOT / "README.md"
    out.write_text(render(), encoding="utf-8")
    print(f"wrote {out}", file=sys.stderr)
