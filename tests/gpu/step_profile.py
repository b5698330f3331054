"""Where one decode step of the engine spends its GPU time, for the 1B shapes (random bf16 weights), on one GPU.

    python tests/gpu/step_profile.py OUT.json

For each model, batch and sampling rule: the engine's decoder for (batch, prompt 512 + 512 new tokens) is built
and captured as the engine does, then (1) the step replayed from its CUDA graph is timed with CUDA events (median
of 50 steps, cache columns 512..), and (2) `steps` eager steps run under torch.profiler; every CUDA kernel is
counted and its GPU time summed, grouped by kind (the sampler kernel, Mamba state update, conv update, matmuls,
attention, the rest). Reported per step: kernels, kernels per layer, GPU microseconds by group, and the sampler's
share of the graph-replayed step (the sampler's profiled kernel time over the replayed step time) and of the eager
step's summed kernel time. Writes OUT.json after every point.
"""
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from thinkfast.generate import Engine, SamplingParams
from thinkfast.records import run_info
from thinkfast.students import ThinkfastForCausalLM, preset_config

MODELS = ("llama-3.2-1b", "llamba-1b", "mambainllama-1b")
BATCHES = (64, 256)
RULES = {"T1": SamplingParams(1.0), "T0.8,p0.95": SamplingParams(0.8, top_p=0.95), "greedy": SamplingParams(0.0)}
GROUPS = (("sampler", ("_sample_kernel",)),
          ("mamba_step", ("_mamba_step_kernel",)),                                   # the fused step (ch13)
          ("ssm_update", ("selective_scan_update", "selective_state_update")),       # mamba-ssm's Triton update
          ("conv_update", ("causal_conv1d_update", "causal_conv1d")),
          ("attention", ("_decode_attn", "flash", "fmha", "attention", "softmax")),
          ("matmul", ("gemm", "gemv", "sm90_xmma", "cutlass", "nvjet", "cublas", "splitk")))


def group_of(name: str) -> str:
    low = name.lower()
    for g, keys in GROUPS:
        if any(k.lower() in low for k in keys): return g
    return "other"


def replay_us(dec, model, col: int, n: int = 50) -> float:
    "Median microseconds of one graph-replayed step at cache columns col, col+1, ..."
    times = []
    for i in range(n):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); dec(model, col + i); b.record(); b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def profile_point(name: str, batch: int, rule: str, steps: int = 5) -> dict:
    config = preset_config(name)
    torch.manual_seed(0)
    with torch.device("cuda"): model = ThinkfastForCausalLM(config).to(torch.bfloat16).eval()
    eng = Engine(model, keep=1)
    t0 = time.perf_counter()
    dec = eng.decoder(batch, 1024, RULES[rule])
    build_s = time.perf_counter() - t0
    col = 512
    dec.pos.fill_(col); dec.step.fill_(1); dec.finished.zero_()
    graph_us = replay_us(dec, model, col)
    kv = dec.bucket(col + 50)
    with torch.no_grad():
        for _ in range(2): dec.body(model, kv)                 # eager warm-up at this bucket
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps): dec.body(model, kv)
            torch.cuda.synchronize()
    us, count = {}, 0
    for ev in prof.events():
        if ev.device_type != torch.autograd.DeviceType.CUDA: continue
        g = group_of(ev.name)
        us[g] = us.get(g, 0.0) + ev.device_time / steps      # device_time: microseconds of this kernel
        count += 1
    eager_sum = sum(us.values())
    del dec, eng, model
    torch.cuda.empty_cache()
    return dict(model=name, batch=batch, sampling=rule, build_capture_s=round(build_s, 2),
                graph_step_us=round(graph_us, 1), eager_kernel_us=round(eager_sum, 1),
                kernels_per_step=count / steps, kernels_per_layer=round(count / steps / config.num_hidden_layers, 1),
                us_by_group={k: round(v, 1) for k, v in sorted(us.items(), key=lambda kv: -kv[1])},
                sampler_share_of_graph_step=round(us.get("sampler", 0.0) / graph_us, 4),
                sampler_share_of_eager_kernels=round(us.get("sampler", 0.0) / eager_sum, 4))


def main(out: str):
    res = dict(run=run_info("cuda"), gpu=torch.cuda.get_device_name(), prompt_len=512, max_len=1024, points=[])
    for name in MODELS:
        for batch in BATCHES:
            for rule in RULES:
                try: pt = profile_point(name, batch, rule)
                except Exception as e: pt = dict(model=name, batch=batch, sampling=rule, error=f"{type(e).__name__}: {e}"[:500])
                res["points"].append(pt)
                print(json.dumps(pt), flush=True)
                Path(out).write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 2: sys.exit(__doc__)
    main(sys.argv[1])
