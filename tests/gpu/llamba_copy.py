"""Does the mini run's Llamba learn its walks reliably, and what makes it? Several Llamba distillations from one
teacher, run side by side on one GPU (each process is launch-bound, so several share the GPU at little cost each).

    python tests/gpu/llamba_copy.py prepare W            # the mini preset's data and teacher into folder W
    python tests/gpu/llamba_copy.py student W VARIANT    # one Llamba variant (VARIANTS), result in W/VARIANT.json
    python tests/gpu/llamba_copy.py collect W OUT.json   # every variant's result (or how far a stopped one got)

The teacher is the `mini` preset's (same data, steps and seed, trained here with the same functions). Each variant
is hidden + KL stages as the preset's Llamba (answer weighting 32 tokens x 8, head 16 tokens), changed as its
entry says; the result is greedy accuracy on the preset's 160 held-out walks, with why a walk failed: the first
line (copies the question's start and count), the step lines (walk_mechanics), and the answer line (the boxed
number against the walk's own last result: `answer_copied`).
"""
import json
import re
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from thinkfast.distill import STAGES, chat_examples, distill, pack
from thinkfast.records import run_info
from thinkfast.reproduce import (accelerator_for, held_out_problems, make_tokenizer, resolve, task_problems,
                                 train_teacher, walk_mechanics, walk_start_ok)
from thinkfast.sampling import read_samples, sample_problems
from thinkfast.students import from_llama, to_llama

BASE = dict(seed=1, init="random", hidden=100, kl=800, lr=1e-3, micro_batch=16, answer_weight=8.0)
VARIANTS = {
    # run on 2026-12-03 (results/llamba_copy_h200): five at once ran at a third of one's speed each
    "base-s1": dict(BASE),
    "base-s2": dict(BASE, seed=2),
    "attn-s1": dict(BASE, init="attention"),
    "attn-s2": dict(BASE, init="attention", seed=2),
    "hidden400-s1": dict(BASE, hidden=400),
    # remedies for the 0.06 plateau (the copy into the answer line never learned), not run yet
    "base-s0": dict(BASE, seed=0),
    "w32-s0": dict(BASE, seed=0, answer_weight=32.0),
    "lr2e3-s0": dict(BASE, seed=0, lr=2e-3),
    "kl1200-s0": dict(BASE, seed=0, kl=1200),
}
_LAST = re.compile(r"\d+: \d+\+\d+=(\d+)\s*\n[^\n]*\\boxed\{(\d+)\}")


PARAMS = dict(kl_head_tokens=16)         # over the mini preset's settings


def mini_cfg() -> dict:
    return resolve("mini", PARAMS)


def greedy(model, tok, problems: list, path: Path) -> dict:
    "Greedy accuracy on `problems` and why walks failed."
    cfg = mini_cfg()
    model.to(cfg["device"], getattr(torch, cfg["dtype"])).eval()
    rs = read_samples(sample_problems(model, tok, problems, path, n=1, max_new_tokens=cfg["max_new_tokens"], temperature=0.0,
                                      seed=cfg["seed"], batch_problems=len(problems), progress=False))
    q = {p["id"]: p["question"] for p in problems}
    copied = [m is not None and m[1] == m[2] for m in (_LAST.search(r["text"]) for r in rs)]
    copied = copied if any("The answer is" in r["text"] for r in rs) else [None]      # walks since 25b2a84 box their last step
    return dict(accuracy=sum(r["correct"] for r in rs) / len(rs), start_ok=sum(walk_start_ok(r["text"], q[r["problem_id"]]) for r in rs) / len(rs),
                answer_copied=None if copied == [None] else sum(copied) / len(rs), mechanics=walk_mechanics([r["text"] for r in rs]),
                answers=sorted({str(r["answer"]) for r in rs})[:5])


def prepare(w: Path):
    cfg, t0 = mini_cfg(), time.perf_counter()
    tok = make_tokenizer(cfg)
    train = task_problems(cfg, cfg["n_train"], cfg["seed"], "train", slip=cfg["slip"])
    ev = held_out_problems(cfg, train)
    data = pack(chat_examples(tok, [(p["question"], p["solution"]) for p in train]), cfg["seq_len"], tok.pad_token_id or 0)
    w.mkdir(parents=True, exist_ok=True)
    torch.save(dict(data=data, eval=ev), w / "data.pt")
    teacher = train_teacher(cfg, tok, data, w / "teacher")
    res = dict(run=run_info(cfg["device"]), teacher_s=time.perf_counter() - t0, teacher=greedy(teacher, tok, ev, w / "greedy-teacher.jsonl"))
    (w / "teacher.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["teacher"]), flush=True)


def student(w: Path, name: str):
    v, cfg, t0 = VARIANTS[name], mini_cfg(), time.perf_counter()
    tok = make_tokenizer(cfg)
    saved = torch.load(w / "data.pt", weights_only=True)
    data, ev = saved["data"], saved["eval"]
    d = w / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(w / "teacher", d / "teacher")           # train_teacher loads the finished stage from here
    teacher = train_teacher(cfg, tok, data, d / "teacher").eval()
    torch.manual_seed(v["seed"])
    s = from_llama(to_llama(teacher), attn_layers=[], mixer="llamba", mixer_init=v["init"])
    common = dict(lr=v["lr"], micro_batch=v["micro_batch"], checkpoint_every=10 ** 6, seed=v["seed"])
    plan = [replace(STAGES["hidden"], steps=v["hidden"], warmup=0, **common),
            replace(STAGES["kl"], steps=v["kl"], warmup=20, answer_tokens=cfg["kl_answer_tokens"], head_tokens=cfg["kl_head_tokens"],
                    answer_weight=v["answer_weight"], **common)]
    m = distill(s, teacher, data, plan, d / "distill", accelerator_for(cfg), progress=False)
    res = dict(variant=v, distill_s=time.perf_counter() - t0, loss={k: (x[0]["loss"], x[-1]["loss"]) for k, x in m.items()},
               curves={k: dict(step=[r["step"] for r in x][::10], loss=[round(r["loss"], 5) for r in x][::10]) for k, x in m.items()})
    res["greedy"] = greedy(s, tok, ev, d / "greedy.jsonl")
    (w / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    print(name, json.dumps(res["greedy"]), flush=True)


def collect(w: Path, out: str):
    res = dict(json.loads((w / "teacher.json").read_text()) if (w / "teacher.json").exists() else {}, variants={})
    for name in VARIANTS:
        f = w / f"{name}.json"
        if f.exists(): res["variants"][name] = json.loads(f.read_text()); continue
        if not (w / name).exists(): continue                    # not started in this run
        last, curves = {}, {}                                   # stopped: how far its stages got
        for st in ("hidden", "kl"):
            mf = w / name / "distill" / st / "metrics.jsonl"
            rows = [json.loads(l) for l in mf.read_text().splitlines() if l.strip()] if mf.exists() else []
            if rows:
                last[st] = rows[-1]
                curves[st] = dict(step=[r["step"] for r in rows][::10], loss=[round(r["loss"], 5) for r in rows][::10])
        res["variants"][name] = dict(variant=VARIANTS[name], stopped=True, last=last, curves=curves)
    Path(out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v.get("greedy", v.get("last")) for k, v in res["variants"].items()}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("prepare", "student", "collect"): sys.exit(__doc__)
    from thinkfast.cli import apply_kernel_settings, kernel_settings
    apply_kernel_settings(kernel_settings())          # THINKFAST_REFERENCE=ssd_scan (llamba_copy.sh), as the command line
    cmd, w = sys.argv[1], Path(sys.argv[2])
    if cmd == "prepare": prepare(w)
    elif cmd == "student": student(w, sys.argv[3])
    else: collect(w, sys.argv[3])
