"""The benchmarks shipped in thinkfast/data: every file is the one its README names (size, records, sha256), and the
loaders read them by default, so a clone runs with nothing beside it and no network."""
import hashlib
import json
import re
from pathlib import Path

from thinkfast.scoring import DATA_DIR, load_gsm8k, load_math500, shipped

ROOT = Path(__file__).resolve().parents[1]


def table() -> dict:
    "{file: (bytes, records or None, sha256)} from the README's table."
    rows = {}
    for line in (DATA_DIR / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([^`]+)` \| ([\d,]+) \|\s*([\d,]*)\s*\| `([0-9a-f]{64})` \|", line)
        if m: rows[m[1]] = (int(m[2].replace(",", "")), int(m[3].replace(",", "")) if m[3] else None, m[4])
    return rows


def test_the_data_folder_is_the_packages():
    assert DATA_DIR == ROOT / "thinkfast" / "data", DATA_DIR


def test_every_shipped_file_matches_its_readme_row():
    rows = table()
    on_disk = {str(p.relative_to(DATA_DIR)) for p in DATA_DIR.rglob("*") if p.is_file() and p.name != "README.md"}
    assert set(rows) == on_disk, (sorted(rows), sorted(on_disk))
    for name, (size, records, sha) in rows.items():
        data = (DATA_DIR / name).read_bytes()
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha, name
        if records is not None:
            lines = data.decode("utf-8").splitlines()
            assert len(lines) == records and all(isinstance(json.loads(l), dict) for l in lines), name


def test_loaders_default_to_the_shipped_copies():
    assert len(load_gsm8k("test")) == 1319 and len(load_gsm8k("train")) == 7473 and len(load_math500()) == 500
    assert load_gsm8k("test") == load_gsm8k("test", shipped("gsm8k", "test"))


def test_the_package_declares_the_data():
    setup = (ROOT / "setup.py").read_text(encoding="utf-8")
    for pattern in ("data/*/*.jsonl", "data/*/LICENSE", "data/README.md"):
        assert f'"{pattern}"' in setup, pattern
