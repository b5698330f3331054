"""What a reproduction run finished, read from its folder: for a run killed before it wrote results.json.

    python tests/gpu/summarise_run.py RUN_DIR OUT_JSON

Reads the run's settings.json, its samples-*.jsonl and greedy-*.jsonl (or their .gz copies) and the executed
reproduce.ipynb (cell durations recorded by papermill), and writes what those files support, computed by the same
library functions the notebook uses: greedy accuracy, per-call sampling rates (median and spread), generated tokens,
coverage@n, budget curves (coverage and majority, 95% bootstrap intervals; no best-of-N, whose verifier scores are
not saved) and each student's wins and crossover against the teacher. Models whose samples are missing are named.
"""
import gzip
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from thinkfast.budgets import budget_curve, by_problem, call_rates
from thinkfast.records import write_json
from thinkfast.reproduce import budget_grid, compare_at_budgets, task_problems, walk_start_ok
from thinkfast.sampling import read_samples
from thinkfast.scoring import coverage_curve


def _records(run: Path, stem: str):
    "The records of `stem`.jsonl, or of its gzipped copy (unpacked beside it), or None."
    p = run / f"{stem}.jsonl"
    if not p.exists() and (run / f"{stem}.jsonl.gz").exists():
        with gzip.open(run / f"{stem}.jsonl.gz", "rb") as f: p.write_bytes(f.read())
    return read_samples(p) if p.exists() else None


def cell_seconds(nb_path: Path) -> list:
    "[(first line of a code cell, seconds, status)] from papermill's metadata, for cells that ran over a second or did not finish."
    nb = json.loads(nb_path.read_text())
    out = []
    for c in nb["cells"]:
        pm = c.get("metadata", {}).get("papermill", {})
        if c["cell_type"] == "code" and pm.get("status") and ((pm.get("duration") or 0) > 1 or pm["status"] != "completed"):
            lines = [l for l in "".join(c["source"]).strip().splitlines() if not l.startswith(("t0 =", "#"))] or [""]
            out.append((lines[0][:80], round(pm.get("duration") or 0, 1), pm["status"]))
    return out


def summarise(run: Path) -> dict:
    cfg = json.loads((run / "settings.json").read_text())
    n = cfg["n_samples"]
    names = ("teacher", "llamba", "hybrid")
    greedy = {k: _records(run, f"greedy-{k}") for k in names}
    records = {k: _records(run, f"samples-{k}") for k in names}
    missing = sorted(k for k, v in records.items() if v is None)
    records = {k: v for k, v in records.items() if v is not None}
    calls = {k: call_rates(v) for k, v in records.items()}
    rate = {k: statistics.median(v) for k, v in calls.items()}
    _, budgets = budget_grid(records, rate, n, cfg["n_budgets"])
    curves = {k: budget_curve(v, budgets, rate[k], ci=0.95) for k, v in records.items()}
    tokens = {k: sorted(r["tokens"] for r in v) for k, v in records.items()}
    start_ok = {}
    if cfg.get("task") == "walk":                  # does the first line start from the question's number?
        questions = {p["id"]: p["question"] for p in task_problems(cfg, cfg["n_eval"], cfg["seed"] + 1, "eval")}
        start_ok = {k: sum(walk_start_ok(r["text"], questions[r["problem_id"]]) for r in v) / len(v) for k, v in greedy.items() if v}
    return dict(settings=cfg, samples_missing=missing,
                greedy_accuracy={k: sum(r["correct"] for r in v) / len(v) for k, v in greedy.items() if v},
                greedy_problems={k: len(v) for k, v in greedy.items() if v}, greedy_start_ok=start_ok,
                tokens_per_s=rate, tokens_per_s_calls=calls,
                generated_tokens={k: dict(median=statistics.median(v), p90=float(np.percentile(v, 90))) for k, v in tokens.items()},
                sample_accuracy={k: sum(r["correct"] for r in v) / len(v) for k, v in records.items()},
                **{f"coverage@{n}": {k: coverage_curve([[r["correct"] for r in rs] for rs in by_problem(v).values()], [n])[n]
                                     for k, v in records.items()}},
                budget_curves=curves, students_vs_teacher=compare_at_budgets(curves) if "teacher" in curves else {},
                cell_seconds=cell_seconds(run / "reproduce.ipynb") if (run / "reproduce.ipynb").exists() else None)


if __name__ == "__main__":
    run, dest = Path(sys.argv[1]), Path(sys.argv[2])
    s = summarise(run)
    write_json(s, dest)
    print(json.dumps({k: s[k] for k in ("samples_missing", "greedy_accuracy", "greedy_start_ok", "tokens_per_s")}, indent=1))
    for k, v in s["students_vs_teacher"].items():
        print(f"{k:18s} ahead at {v['wins']} of {v['budgets']} budgets, mean margin {v['mean_margin']:+.3f}, from {v['crossover_s']} s on")
