"""The library's shape: no import circle among thinkfast's modules (lazy imports inside functions count too)."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "thinkfast"


def imports(path: Path, modules: set) -> set:
    "The thinkfast modules `path` imports, at module level or inside functions."
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module: out.add(n.module.split(".")[0])
        elif isinstance(n, ast.ImportFrom) and n.level == 1: out |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("thinkfast"):
            parts = n.module.split(".")
            out |= {parts[1]} if len(parts) > 1 else {a.name for a in n.names}
        elif isinstance(n, ast.Import): out |= {a.name.split(".")[1] for a in n.names if a.name.startswith("thinkfast.")}
    return (out & modules) - {path.stem}


def test_no_import_circle():
    files = {p.stem: p for p in PKG.glob("*.py") if not p.stem.startswith("_")}
    graph = {m: imports(p, set(files)) for m, p in files.items()}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            assert state.get(d) != "open", f"import circle: {' -> '.join(path + [d])}"
            if d not in state: visit(d, path + [d])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state: visit(m, [m])
    assert {"generate", "sampler", "draws"} <= set(graph) and "sampler" in graph["generate"]   # the graph is read
