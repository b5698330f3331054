"""Build an HTML preview of the docs without Quarto, and check it in headless Chromium.

    python tests/preview.py [--out preview] [--screenshots]

Quarto cannot be installed on this project's machines, so the preview renders each notebook's stored
outputs with nbconvert (the notebooks are not re-executed), turns links between notebooks into links
between pages, and puts the sidebar of nbs/sidebar.yml (grouped by pipeline stage) on every page. Each
page carries a small script that, once the page has loaded, records on <body> how many images it has and
how many failed to render (`data-images`, `data-broken-images`): headless Chromium's --dump-dom reads
them back, so a missing or corrupt figure fails the check in a real browser. tests/test_docs.py calls
`build` and `browser_check`.
"""
import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]
CHECK_SCRIPT = """<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.setAttribute("data-images", imgs.length);
  document.body.setAttribute("data-broken-images", broken.length);
});
</script>"""
STYLE = """<style>
body { margin: 0; } #tf-nav { position: fixed; top: 0; left: 0; width: 230px; height: 100%; overflow-y: auto;
  background: #f6f7f9; border-right: 1px solid #ddd; font: 14px/1.4 sans-serif; padding: 12px; box-sizing: border-box; }
#tf-nav h3 { font-size: 12px; text-transform: uppercase; color: #666; margin: 14px 0 4px; }
#tf-nav a { display: block; color: #1a4d8f; text-decoration: none; padding: 2px 0; } #tf-nav a.current { font-weight: bold; }
#tf-main { margin-left: 250px; } .jp-InputPrompt, .jp-OutputPrompt { display: none; }
</style>"""


def sidebar() -> list:
    "[(section or None, [notebook file names])] from nbs/sidebar.yml."
    spec = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    out = []
    for item in spec:
        if isinstance(item, str): out.append((None, [item]))
        else: out.append((item["section"], list(item["contents"])))
    return out


def title(nb) -> str:
    for c in nb.cells:
        if c.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", c.source, flags=re.M)
            if m: return m.group(1).strip()
    return "untitled"


def _nav(current: str, titles: dict) -> str:
    parts = ['<nav id="tf-nav">']
    for section, files in sidebar():
        if section: parts.append(f"<h3>{html.escape(section)}</h3>")
        for f in files:
            page = Path(f).with_suffix(".html").name
            cls = ' class="current"' if page == current else ""
            parts.append(f'<a href="{page}"{cls}>{html.escape(titles.get(f, f))}</a>')
    return "\n".join(parts + ["</nav>"])


def build(out=ROOT / "preview") -> list:
    "Render every notebook in nbs/ to out/NAME.html (stored outputs, sidebar, links between pages); returns the pages."
    from nbconvert import HTMLExporter
    out = Path(out)
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    nbs = sorted(NBS.glob("*.ipynb"))
    books = {p.name: nbformat.read(p, as_version=4) for p in nbs}
    titles = {name: title(nb) for name, nb in books.items()}
    from nbconvert.preprocessors import TagRemovePreprocessor
    exporter = HTMLExporter(template_name="lab")
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"hide-input"}), enabled=True)
    exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
    pages = []
    for name, nb in books.items():
        cells = []
        for c in nb.cells:                                 # nbdev directives are for nbdev, not readers
            if c.cell_type == "code":
                lines = c.source.splitlines()
                if any(l.strip().startswith("#|") and l.strip()[2:].strip().split(":")[0] in ("hide", "exporti") for l in lines): continue
                if any(re.match(r"#\|\s*echo:\s*false", l.strip()) for l in lines):
                    c.metadata.setdefault("tags", []).append("hide-input")
                c.source = "\n".join(l for l in lines if not l.strip().startswith("#|")).strip("\n")
                if not c.source and not c.get("outputs"): continue
            cells.append(c)
        nb.cells = cells
        body, _ = exporter.from_notebook_node(nb)
        page = Path(name).with_suffix(".html").name
        body = re.sub(r'href="([\w\-./]+)\.ipynb(#[^"]*)?"', lambda m: f'href="{m.group(1)}.html{m.group(2) or ""}"', body)
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _nav(page, titles) + '<div id="tf-main">', body, count=1)
        body = body.replace("</body>", "</div>" + CHECK_SCRIPT + "</body>", 1).replace("</head>", STYLE + "</head>", 1)
        (out / page).write_text(body, encoding="utf-8")
        pages.append(out / page)
    return pages


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def browser_check(page: Path, screenshot: Path, width: int = 1280, height: int = 1800) -> dict:
    "Load `page` in headless Chromium: its image counts after load, and a screenshot written to `screenshot`."
    exe = chromium()
    if exe is None: raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as prof:
        dom = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", "--dump-dom", page.resolve().as_uri()],
                             capture_output=True, text=True, timeout=120)
    with tempfile.TemporaryDirectory() as prof:
        shot = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={prof}", f"--screenshot={screenshot.resolve()}",
                               f"--window-size={width},{height}", page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r'<body[^>]*data-images="(\d+)"[^>]*data-broken-images="(\d+)"', dom.stdout)
    return dict(images=int(m.group(1)) if m else None, broken=int(m.group(2)) if m else None,
                screenshot=screenshot if screenshot.exists() else None, dom_rc=dom.returncode, shot_rc=shot.returncode,
                stderr=(dom.stderr + shot.stderr)[-2000:])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "preview"))
    ap.add_argument("--screenshots", action="store_true", help="also load index and 04_throughput in Chromium")
    a = ap.parse_args()
    pages = build(a.out)
    print(f"wrote {len(pages)} pages to {a.out}")
    if a.screenshots:
        for name in ("index", "04_throughput"):
            r = browser_check(Path(a.out) / f"{name}.html", Path(a.out) / "screenshots" / f"{name}.png")
            print(name, {k: v for k, v in r.items() if k != "stderr"})
    sys.exit(0)
