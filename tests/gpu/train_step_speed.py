"""Seconds per training step of the `mini` preset's three trainings (teacher SFT, hybrid KL, Llamba KL) on one GPU,
through `distill.train_stage` as the run calls it (bf16 mixed precision, its syncs and checks), at several
micro-batch sizes, and for the Llamba with the SSD scan on the PyTorch reference (as the mini run trains) and on
mamba-ssm's kernel (whose first step pays its Triton autotuning).

    python tests/gpu/train_step_speed.py OUT.json [steps]

Random tokens stand in for the walks (documents of ~1,200 tokens packed into rows of 1,536; the speed of a step
does not depend on the tokens). Reported per point: the first step's seconds (compilation, autotuning) and the
median of the rest, tokens per second. Writes OUT.json after every point.
"""
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from thinkfast.distill import STAGES, train_stage
from thinkfast.records import run_info
from thinkfast.reproduce import accelerator_for
from thinkfast.ssd import use_reference
from thinkfast.students import ThinkfastConfig, ThinkfastForCausalLM, from_llama, to_llama

SEQ, DOC, VOCAB = 1536, 1200, 100


def fake_data(rows: int, seed: int = 0) -> dict:
    "Packed rows of random tokens: one document of DOC tokens then the start of the next, as `pack` lays them out."
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (rows, SEQ), generator=g)
    col = torch.arange(SEQ)
    doc = (col >= DOC).long().expand(rows, SEQ).contiguous()
    pos = torch.where(col < DOC, col, col - DOC).expand(rows, SEQ).contiguous()
    labels = ids.clone()
    labels[:, 0] = -100
    labels[:, DOC] = -100
    return dict(input_ids=ids, labels=labels, position_ids=pos, seq_idx=doc)


def teacher_config() -> ThinkfastConfig:
    return ThinkfastConfig(vocab_size=VOCAB, hidden_size=384, intermediate_size=1152, num_hidden_layers=8,
                           num_attention_heads=6, num_key_value_heads=2, head_dim=64, rope_theta=10000.0,
                           max_position_embeddings=4096)


def time_stage(model, teacher, stage, data, cfg) -> dict:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        m = train_stage(model, teacher, data, stage, d, accelerator_for(cfg), progress=False)
        wall = time.perf_counter() - t0
    rates = [x["tokens_per_s"] for x in m]
    tokens = m[0]["tokens"]
    rest = [tokens / r for r in rates[1:]]
    return dict(steps=len(m), wall_s=round(wall, 2), first_step_s=round(tokens / rates[0], 3),
                median_step_s=round(statistics.median(rest), 4), tokens_per_s=round(tokens / statistics.median(rest)),
                loss_first=m[0]["loss"], loss_last=m[-1]["loss"])


def main(out: str, steps: int = 30):
    cfg = dict(device="cuda", dtype="bfloat16")
    res = dict(run=run_info("cuda"), gpu=torch.cuda.get_device_name(), seq_len=SEQ, points=[])
    data = fake_data(512)

    def record(**pt):
        res["points"].append(pt)
        print(json.dumps(pt), flush=True)
        Path(out).write_text(json.dumps(res, indent=1) + "\n")

    torch.manual_seed(0)
    teacher = ThinkfastForCausalLM(teacher_config())
    sft = replace(STAGES["sft"], name="teacher", steps=steps, lr=1e-3, warmup=1, checkpoint_every=10 ** 6)
    kl = replace(STAGES["kl"], steps=steps, lr=1e-3, warmup=1, checkpoint_every=10 ** 6, answer_tokens=32, answer_weight=8.0)
    for mb in (16, 32, 48):
        record(what="teacher sft", micro_batch=mb, **time_stage(teacher, None, replace(sft, micro_batch=mb), data, cfg))
        teacher.eval()
        hf = to_llama(teacher)
        for name, kw in (("hybrid", dict(attn_layers=[3, 7], mixer="mambainllama")),
                         ("llamba", dict(attn_layers=[], mixer="llamba", mixer_init="random"))):
            use_reference("ssd_scan")
            s = from_llama(hf, **kw)
            record(what=f"{name} kl", scan="reference", micro_batch=mb, **time_stage(s, teacher, replace(kl, micro_batch=mb), data, cfg))
    use_reference(())                                             # mamba-ssm's scan: autotuned on its first step
    for mb in (16, 32):
        s = from_llama(to_llama(teacher), attn_layers=[], mixer="llamba", mixer_init="random")
        record(what="llamba kl", scan="mamba-ssm", micro_batch=mb, **time_stage(s, teacher, replace(kl, micro_batch=mb), data, cfg))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3): sys.exit(__doc__)
    main(sys.argv[1], *map(int, sys.argv[2:]))
