"""What a reproduction run finished, read from its folder: for a run killed before it wrote results.json.

    python tests/gpu/summarise_run.py RUN_DIR OUT_JSON

Reads the run's settings.json, its samples-*.jsonl and greedy-*.jsonl (or their .gz copies) and the executed
reproduce.ipynb (cell durations recorded by papermill), and writes what those files support, computed by the same
library functions the notebook uses: greedy accuracy, per-call sampling rates (median and spread), generated tokens,
coverage@n, budget curves (coverage and majority, 95% bootstrap intervals; no best-of-N, whose verifier scores are
not saved) and each student's wins and crossover against the teacher. Models whose samples are missing are named.
For the walk task, also how the walks begin and go on (`walk`): the share of greedy walks and of samples whose first
line copies the question's start number and its count, accuracy among those that copy both, and `walk_mechanics`.
"""
import gzip
import json
import statistics
import sys
from pathlib import Path

import numpy as np

from thinkfast.budgets import budget_curve, by_problem, call_rates
from thinkfast.records import write_json
from thinkfast.reproduce import (budget_grid, compare_at_budgets, held_out_problems, task_problems, walk_first_line,
                                 walk_mechanics, walk_start_ok)
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


def walk_beginnings(records: list, questions: dict) -> dict:
    "Shares of walks whose first line copies the question's start number, its count, both; accuracy when both; the walk mechanics."
    start = count = 0
    right_given_both = []
    for r in records:
        s, k = walk_first_line(r["text"], questions[r["problem_id"]])
        start += s; count += k
        if s and k: right_given_both.append(r["correct"])
    n = max(1, len(records))
    return dict(start_copied=start / n, count_copied=count / n, both_copied=len(right_given_both) / n,
                accuracy_when_both=sum(right_given_both) / len(right_given_both) if right_given_both else None,
                **walk_mechanics([r["text"] for r in records]))


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
    start_ok, walk = {}, {}
    if cfg.get("task") == "walk":                  # does the first line copy the question's start and count?
        train = task_problems(cfg, cfg["n_train"], cfg["seed"], "train", slip=cfg["slip"])
        questions = {p["id"]: p["question"] for p in held_out_problems(cfg, train)}
        start_ok = {k: sum(walk_start_ok(r["text"], questions[r["problem_id"]]) for r in v) / len(v) for k, v in greedy.items() if v}
        walk = {f"{kind}/{k}": walk_beginnings(v, questions) for kind, recs in (("greedy", greedy), ("samples", records))
                for k, v in recs.items() if v}
    return dict(settings=cfg, samples_missing=missing,
                greedy_accuracy={k: sum(r["correct"] for r in v) / len(v) for k, v in greedy.items() if v},
                greedy_problems={k: len(v) for k, v in greedy.items() if v}, greedy_start_ok=start_ok, walk=walk,
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
