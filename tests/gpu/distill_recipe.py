"""Learning curves of the `mini` students, and the initialisation ablation, on one GPU.

    python tests/gpu/distill_recipe.py OUT_DIR [budget_s] [variants]

Trains the `mini` teacher exactly as `thinkfast reproduce --preset mini` does, then distils each variant (a student
kind, its mixer initialisation and a schedule: a hidden-state stage, then KL stages run back to back) and after every
KL stage scores greedy decoding on held-out walks, and the student's agreement with the teacher (argmax and KL per
answer token, teacher-forced on held-out solutions). Variants run in the order given until `budget_s` (default 480)
would be passed. Every measurement is appended to OUT_DIR/curves.jsonl as it is made (a killed run keeps what it
finished); OUT_DIR/recipe.json gathers them with the run's device and commit at the end.
"""
import copy
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from thinkfast.records import run_info
from thinkfast.distill import STAGES, chat_examples, masked_kl, pack, train_stage
from thinkfast.records import write_json
from thinkfast.reproduce import (accelerator_for, held_out_problems, make_tokenizer, resolve, task_problems, train_teacher,
                                 walk_mechanics, walk_start_ok)
from thinkfast.sampling import read_samples, sample_problems
from thinkfast.ssd import use_reference
from thinkfast.students import from_llama, to_llama

# name: (mixer, attention layers, mixer init, stages before KL [(stage, steps, lr)], KL stages [(steps, lr, warmup, min_lr_ratio)])
_N = int(os.environ.get("RECIPE_KL", 200))         # steps of each KL stage
_H = int(os.environ.get("RECIPE_HIDDEN", 100))     # steps of the hidden-state stage
_M = int(os.environ.get("RECIPE_MATRIX", 100))     # steps of the matrix-orientation stage (MOHAWK's stage 1)
HID = [("hidden", _H, 1e-3)]
KL = [(_N, 1e-3, 20, 1.0), (_N, 1e-3, 0, 1.0), (_N, 1e-3, 0, 0.1)]
KL2 = [(2 * _N, 1e-3, 20, 1.0), (2 * _N, 1e-3, 0, 0.1)]        # the preset's Llamba schedule, looked at half-way
VARIANTS = {
    "llamba": ("llamba", [], "attention", HID, KL),
    "hybrid": ("mambainllama", [3, 7], "attention", HID, KL),
    # the ablation: the same steps as the first point of the attention-initialised curve, mixers left random
    "hybrid-random": ("mambainllama", [3, 7], "random", HID, KL[:1]),
    "llamba-random": ("llamba", [], "random", HID, KL[:1]),
    # the preset's Llamba (random mixers, 800 KL steps), looked at half-way and at the end
    "llamba-800": ("llamba", [], "random", HID, KL2),
    "hybrid-500": ("mambainllama", [3, 7], "attention", HID, [(500, 1e-3, 20, 1.0)]),      # the preset's hybrid
    "llamba-400": ("llamba", [], "random", HID, [(200, 1e-3, 20, 1.0), (200, 1e-3, 0, 0.1)]),
    # MOHAWK's three stages: matrix orientation first (attention-initialised mixers learn attention's mixing, memory included)
    "llamba-mohawk": ("llamba", [], "attention", [("matrix", _M, 1e-3)] + HID, KL2),
    "llamba-mohawk-random": ("llamba", [], "random", [("matrix", _M, 1e-3)] + HID, KL2),
}
ALL_REFERENCE = "ssd_scan,ssd_update,causal_conv1d,causal_conv1d_step"


@torch.no_grad()
def dt_median(student, held) -> list | None:
    """Per Llamba layer, the 10th percentile and the median of the step size dt = softplus(a) over held-out tokens:
    how far back each layer can remember (its state decays by exp(-dt) a token). None for other students."""
    mixers = [l.mixer for l in student.model.layers if l.kind == "llamba"]
    if not mixers: return None
    grab = []
    def hook(mod, inputs, out, n=mixers[0].nheads): grab.append(out[..., -n:].float().flatten())   # 'a' ends in_proj
    hooks = [m.in_proj.register_forward_hook(hook) for m in mixers]
    try:
        student(held["input_ids"][:4], position_ids=held["position_ids"][:4], seq_idx=held["seq_idx"][:4])
    finally:
        for h in hooks: h.remove()
    qs = torch.tensor([0.1, 0.5], device=grab[0].device)
    return [[round(v, 4) for v in torch.quantile(torch.nn.functional.softplus(a[:2**20]), qs).tolist()] for a in grab]


def main(out: Path, budget: float, names: list):
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "curves.jsonl"
    def record(**kw):
        kw["elapsed_s"] = round(time.perf_counter() - t_start, 1)
        with open(log, "a") as f: f.write(json.dumps(kw) + "\n")
        print(json.dumps(kw), flush=True)
    cfg = resolve("mini", json.loads(os.environ.get("RECIPE_PARAMS", "{}")))      # overrides, for a smoke run on a CPU
    device, dtype = torch.device(cfg["device"]), getattr(torch, cfg["dtype"])
    tok = make_tokenizer(cfg)
    train = task_problems(cfg, cfg["n_train"], cfg["seed"], "train", slip=cfg["slip"])
    probe = held_out_problems(cfg, train, 100)
    data = pack(chat_examples(tok, [(p["question"], p["solution"]) for p in train]), cfg["seq_len"], tok.pad_token_id or 0)
    held = pack(chat_examples(tok, [(p["question"], p["solution"]) for p in probe]), cfg["seq_len"], tok.pad_token_id or 0)
    held = {k: v[:16].to(device) for k, v in held.items() if k != "stats"}
    t0 = time.perf_counter()
    teacher = train_teacher(cfg, tok, data, out / "teacher").eval()
    record(model="teacher", phase="train", seconds=round(time.perf_counter() - t0, 1), steps=cfg["teacher_steps"])

    questions = {p["id"]: p["question"] for p in probe}
    mechanics = {}

    def greedy(model, tag, ops=None, problems=probe):
        "Greedy accuracy, median length, seconds and the share whose first line starts from the question's number."
        ref = use_reference(ops or ())                         # decode on the fast path, as the run does, or on the
                                                               # reference path, to tell model from kernels
        t = time.perf_counter()
        m = copy.deepcopy(model).to(device, dtype).eval()
        rs = read_samples(sample_problems(m, tok, problems, out / f"greedy-{tag}.jsonl", n=1, max_new_tokens=cfg["max_new_tokens"],
                                          temperature=0.0, seed=cfg["seed"], batch_problems=len(problems), progress=False, overwrite=True))
        del m
        use_reference(ref)
        start_ok = sum(walk_start_ok(r["text"], questions[r["problem_id"]]) for r in rs) / len(rs)
        mechanics[tag] = walk_mechanics([r["text"] for r in rs])
        return sum(r["correct"] for r in rs) / len(rs), sorted(r["tokens"] for r in rs)[len(rs) // 2], time.perf_counter() - t, start_ok

    @torch.no_grad()
    def agreement(model):
        kw = dict(position_ids=held["position_ids"], seq_idx=held["seq_idx"])
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            ls, lt = model(held["input_ids"], **kw).logits.float(), teacher(held["input_ids"], **kw).logits.float()
        mask = held["labels"][:, 1:] != -100
        agree = (ls[:, :-1].argmax(-1) == lt[:, :-1].argmax(-1))[mask].float().mean().item()
        hits = []                                # the four digits the first line copies from the question, teacher-forced
        for r in range(held["input_ids"].shape[0]):
            p0 = int((held["labels"][r] != -100).nonzero()[0])
            first = tok.decode(held["input_ids"][r, p0:p0 + 16].tolist())
            o = p0 + first.index(": ") + 2
            hits += (ls[r, o - 1:o + 3].argmax(-1) == held["input_ids"][r, o:o + 4]).tolist()
        return agree, masked_kl(ls, lt, held["labels"]).item(), sum(hits) / len(hits)

    acc, steps_s = greedy(teacher, "teacher"), {}
    record(model="teacher", phase="eval", greedy=acc[0], median_tokens=acc[1], eval_s=round(acc[2], 1), start_ok=acc[3])
    hf_teacher = to_llama(teacher)
    for name in names:
        mixer, attn, init, pre, kl = VARIANTS[name]
        need = sum(n * 0.1 for _, n, _ in pre) + sum(s for s, *_ in kl) * steps_s.get(mixer, 0.15) + 15 * len(kl)
        if time.perf_counter() - t_start + need > budget:
            record(model=name, phase="skipped", why=f"about {need:.0f} s needed, {budget - (time.perf_counter() - t_start):.0f} s left")
            continue
        torch.manual_seed(cfg["seed"])
        s = from_llama(hf_teacher, attn_layers=attn, mixer=mixer, mixer_init=init)
        record(model=name, phase="init", dt_median=dt_median(s.to(device), held))
        for stage, n, lr in pre:
            t = time.perf_counter()
            st = replace(STAGES[stage], steps=n, lr=lr, micro_batch=cfg["micro_batch"], checkpoint_every=n, seed=cfg["seed"])
            m = train_stage(s, teacher, data, st, out / name, accelerator_for(cfg), progress=False)
            record(model=name, phase=stage, steps=n, seconds=round(time.perf_counter() - t, 1), loss=[m[0]["loss"], m[-1]["loss"]],
                   dt_median=dt_median(s, held))
        done = 0
        for j, (n, lr, warm, floor) in enumerate(kl):
            t = time.perf_counter()
            st = replace(STAGES["kl"], name=f"kl{j}", steps=n, lr=lr, warmup=warm, min_lr_ratio=floor, micro_batch=cfg["micro_batch"],
                         checkpoint_every=n, seed=cfg["seed"] + j)
            m = train_stage(s, teacher, data, st, out / name, accelerator_for(cfg), progress=False)
            sec = time.perf_counter() - t
            steps_s[mixer] = sec / n
            done += n
            s.eval()
            g, med, es, start_ok = greedy(s, f"{name}-{done}")
            ag, kl_held, start_tf = agreement(s)
            extra = {}
            if os.environ.get("RECIPE_REFERENCE_DECODE"):          # the same greedy decode, every op on the reference path
                g_ref, _, es_ref, start_ref = greedy(s, f"{name}-{done}-ref", ALL_REFERENCE, probe[:32])
                extra = dict(greedy_ref32=g_ref, start_ok_ref32=start_ref, eval_ref_s=round(es_ref, 1))
            s.train()
            record(model=name, phase="kl", kl_steps=done, lr=lr, seconds=round(sec, 1), loss=[m[0]["loss"], m[-1]["loss"]],
                   greedy=g, median_tokens=med, eval_s=round(es, 1), agree=ag, kl_held=kl_held, start_ok=start_ok,
                   start_teacher_forced=start_tf, dt_median=dt_median(s, held), walk=mechanics[f"{name}-{done}"], **extra)
    rows = [json.loads(l) for l in log.read_text().splitlines()]
    write_json(dict(run=run_info(device), settings=cfg, variants={k: VARIANTS[k] for k in names}, probe_problems=len(probe),
                    rows=rows, wall_s=time.perf_counter() - t_start), out / "recipe.json")


if __name__ == "__main__":
    from thinkfast.cli import apply_kernel_settings, kernel_settings
    apply_kernel_settings(kernel_settings())          # THINKFAST_REFERENCE etc., as the command line takes them
    a = sys.argv[1:]
    main(Path(a[0]), float(a[1]) if len(a) > 1 else 480.0, a[2].split(",") if len(a) > 2 else list(VARIANTS))
