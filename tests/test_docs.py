"""The docs a reader sees: every chapter in the sidebar, opening with what it builds and citing its sources, no
stray warnings, tracebacks or giant outputs; an HTML preview whose internal links and images resolve, and that
headless Chromium renders with every image loaded (screenshots in preview/screenshots/)."""
import re
from pathlib import Path

import nbformat
import pytest

import preview

NBS = sorted(preview.NBS.glob("*.ipynb"))
CHAPTERS = [p for p in NBS if p.name != "index.ipynb"]
OUT = preview.ROOT / "preview"


def test_sidebar_lists_every_notebook():
    listed = [f for _, files in preview.sidebar() for f in files]
    assert sorted(listed) == sorted(p.name for p in NBS), f"nbs/sidebar.yml lists {listed}"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_what_and_why(nb_path):
    first = nbformat.read(nb_path, as_version=4).cells[0]
    assert first.cell_type == "markdown" and re.match(r"#\s+\S", first.source), f"{nb_path.name}: first cell must be '# Title'"
    assert re.search(r"^>\s+\S.{20,}", first.source, flags=re.M), f"{nb_path.name}: the title needs a '> what it builds' line"


@pytest.mark.parametrize("nb_path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_cites_its_sources(nb_path):
    text = "\n".join(c.source for c in nbformat.read(nb_path, as_version=4).cells if c.cell_type == "markdown")
    assert re.search(r"et al\.|arXiv|\(\d{4}\)", text), f"{nb_path.name}: no citation (author et al., year / arXiv id) in its text"


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_arxiv_ids_are_links(nb_path):
    "Every arXiv id the prose cites links to its abstract page, so a reader is one click from the source."
    for i, c in enumerate(nbformat.read(nb_path, as_version=4).cells):
        if c.cell_type != "markdown": continue
        for m in re.finditer(r"arXiv\s+(\d{4}\.\d{4,5})", c.source):
            linked = c.source[max(0, m.start() - 1):m.start()] == "[" and c.source[m.end():].startswith(f"](https://arxiv.org/abs/{m[1]})")
            assert linked, f"{nb_path.name} cell {i}: 'arXiv {m[1]}' is not a link to https://arxiv.org/abs/{m[1]}"


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_no_stray_outputs(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            assert o.output_type != "error", f"{nb_path.name} cell {i}: a stored traceback"
            text = o.get("text", "") if o.output_type == "stream" else "".join(o.get("data", {}).get("text/plain", ""))
            if o.output_type == "stream" and o.name == "stderr":
                assert not re.search(r"(?i)traceback|warning|error", text), f"{nb_path.name} cell {i}: stray stderr: {text[:300]!r}"
            if o.output_type == "stream":
                assert not re.search(r"(?i)\bwarn(ing)?\b", text), f"{nb_path.name} cell {i}: a warning in the output: {text[:300]!r}"
            assert len(text) < 10_000, f"{nb_path.name} cell {i}: a {len(text)}-character output"


@pytest.fixture(scope="module")
def pages():
    return preview.build(OUT)


def test_preview_links_and_images(pages):
    assert {p.name for p in pages} == {p.with_suffix(".html").name for p in NBS}
    for page in pages:
        doc = page.read_text(encoding="utf-8")
        for href in re.findall(r'href="([^"]+)"', doc):
            if re.match(r"(https?:|mailto:|data:|#)", href): continue
            target, _, anchor = href.partition("#")
            assert (page.parent / target).exists(), f"{page.name}: broken link {href}"
            if anchor: assert f'id="{anchor}"' in (page.parent / target).read_text(encoding="utf-8"), f"{page.name}: no anchor {href}"
        for src in re.findall(r'<img[^>]+src="([^"]*)"', doc):
            if src.startswith("data:"): assert len(src) > 100, f"{page.name}: an empty embedded image"
            else: assert src and (page.parent / src).exists(), f"{page.name}: missing image {src!r}"


@pytest.mark.skipif(preview.chromium() is None, reason="chromium not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("name", ["index", "04_throughput"])
def test_browser_renders_every_image(pages, name):
    nb = nbformat.read(preview.NBS / f"{name}.ipynb", as_version=4)
    figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    r = preview.browser_check(OUT / f"{name}.html", OUT / "screenshots" / f"{name}.png")
    assert r["images"] is not None, f"the page's check script did not run: {r['stderr']}"
    assert r["broken"] == 0 and r["images"] >= figures, r
    assert figures >= 1, f"{name}: the page shows no figure"
    assert r["screenshot"] is not None and r["screenshot"].stat().st_size > 20_000, r
