"""The docs a reader sees: every chapter in the sidebar, opening with what it builds and citing its sources, no
stray warnings, tracebacks or giant outputs; the home page's measured numbers as the results files give them today;
an HTML preview whose internal links and images resolve, and that headless Chromium renders with every image loaded
(screenshots in preview/screenshots/)."""
import os
import re
from pathlib import Path
from unittest import mock

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


def _home_numbers_cell(nb):
    "The home page's code cell that displays Markdown (its measured paragraphs)."
    cells = [c for c in nb.cells if c.cell_type == "code" and "Markdown(" in c.source]
    assert len(cells) == 1, f"index.ipynb: expected one code cell displaying Markdown, found {len(cells)}"
    return cells[0]


def _stored_markdown(cell) -> list:
    return ["".join(o["data"]["text/markdown"]) for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {})]


_NAME = re.compile(r"\b[A-Z][a-z]+(?:-[\w.]+)+")           # Llama-3.2-1B, Llamba-3B, Mamba-2: names, not measurements
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?")   # 44.8 of 44.8k, 1,200, 46 of 46%; not 100 of H100 or 16 of bf16


def shown_numbers(text: str) -> list:
    "The numbers a reader sees in `text`, leaving out code spans (file names), link targets and model names."
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return _NUMBER.findall(_NAME.sub(" ", text))


@pytest.fixture(scope="module")
def home_numbers():
    """The home page's measured paragraphs as stored in nbs/index.ipynb, the same cell re-run now against
    results/ (cwd nbs/, as the notebook runs), and the values that cell computed from the files (the formatted values
    its paragraphs recorded in `Shown` lists as they were written)."""
    import matplotlib
    matplotlib.use("Agg")
    from IPython.display import Markdown
    cell = _home_numbers_cell(nbformat.read(preview.NBS / "index.ipynb", as_version=4))
    shown, ns, cwd = [], {}, os.getcwd()
    try:
        os.chdir(preview.NBS)
        with mock.patch("IPython.display.display", side_effect=shown.append):
            exec(compile(cell.source, "nbs/index.ipynb (measured paragraphs)", "exec"), ns)
    finally:
        os.chdir(cwd)
    values = [v for x in ns.values() if isinstance(x, ns["Shown"]) for v in x]
    return dict(stored=_stored_markdown(cell), fresh=[o.data for o in shown if isinstance(o, Markdown)], values=values)


def test_home_page_numbers_are_current(home_numbers):
    "The paragraphs stored on the home page are what its cell computes from the results files now: none is stale."
    stored, fresh = home_numbers["stored"], home_numbers["fresh"]
    assert len(fresh) == 2, f"the cell displayed {len(fresh)} paragraphs, not the speed and the accuracy one"
    assert len(stored) == 2, f"nbs/index.ipynb stores {len(stored)} of the 2 paragraphs: execute it and store its outputs"
    for old, new in zip(stored, fresh):
        at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
        assert old == new, ("nbs/index.ipynb holds stale numbers: execute it, store its outputs and run tests/readme.py.\n"
                            f"stored: ...{old[max(0, at - 80):at + 80]}...\nnow:    ...{new[max(0, at - 80):at + 80]}...")


def test_home_page_numbers_come_from_the_files(home_numbers):
    """Every number in the stored paragraphs is one the cell computed from the results files (none typed into the
    prose), and every results file a paragraph names exists."""
    assert len(home_numbers["stored"]) == 2, "nbs/index.ipynb stores no measured paragraphs: execute it and store its outputs"
    computed = set(shown_numbers(" ".join(home_numbers["values"])))
    for text in home_numbers["stored"]:
        numbers = shown_numbers(text)
        assert len(numbers) >= 10, f"too few numbers found in a paragraph ({numbers}): is the number pattern still right?"
        typed = sorted(set(numbers) - computed)
        assert not typed, f"numbers on the home page that no results file gave: {typed}\nin: {text}"
        named = re.findall(r"`(results/[^`]+)`", text)
        assert named, f"a measured paragraph names no results file: {text}"
        for f in named: assert (preview.ROOT / f).exists(), f"the home page cites {f}, which does not exist"


def test_shown_numbers_pattern():
    "What counts as a number a reader sees (a check of the pattern itself)."
    assert shown_numbers("44.8k tokens/s on one H100 at batch 256, 3.7-3.9x, 46% of 1,200; fp32 and bf16") == \
        ["44.8", "256", "3.7", "3.9", "46", "1,200"]
    assert shown_numbers("Llama-3.2-1B and Llamba-3B, `results/throughput_h100_3b.json`, [ch](10_reproduce.ipynb), the 1B shapes") == ["1"]


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


_BAR = re.compile(r"\d+%\|[^\n]*\|")
_WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_no_frozen_progress_or_reused_timings(nb_path):
    "Stored outputs hold no progress bar or widget (frozen when saved) and no timing of a run folder that was reused."
    nb = nbformat.read(nb_path, as_version=4)
    for i, c in enumerate(nb.cells):
        for o in c.get("outputs", []):
            assert _WIDGET not in o.get("data", {}), f"{nb_path.name} cell {i}: a stored progress widget"
            text = o.get("text", "") if o.output_type == "stream" else "".join(o.get("data", {}).get("text/plain", ""))
            assert not _BAR.search(text), f"{nb_path.name} cell {i}: a stored progress bar: {_BAR.search(text).group(0)!r}"
            assert not re.search(r"\bafter 0 s\b", text), f"{nb_path.name} cell {i}: a timing of a reused run: {text[:200]!r}"


_CHAPTERS = {"SSD": "00_ssd", "layers": "01_layers", "models": "02_students", "generation": "03_generate",
             "throughput": "04_throughput", "distillation": "05_distill", "scoring": "06_scoring", "sampling": "07_sampling",
             "rewards": "08_rewards", "budgets": "09_budgets", "reproduction": "10_reproduce", "records": "91_records"}


@pytest.mark.parametrize("nb_path", NBS, ids=lambda p: p.stem)
def test_chapters_named_in_prose_are_links(nb_path):
    "Prose that names a chapter ('the throughput chapter', 'chapter 04') links to it."
    nb = nbformat.read(nb_path, as_version=4)
    names = "|".join(_CHAPTERS)
    for i, c in enumerate(nb.cells):
        if c.cell_type != "markdown": continue
        text = re.sub(r"\[[^\]]*\]\([^)]*\)", "", c.source)               # linked mentions are fine
        text = re.sub(r"`[^`]*`", "", text)
        m = re.search(rf"\b[Tt]he ({names}) chapter\b|\bchapter \d\d\b", text)
        assert not m, f"{nb_path.name} cell {i}: {m.group(0)!r} names a chapter without linking to it"
