"""The decode step's sampler on one GPU: `generate.sample` under torch.compile (the engine's sampler before the
kernel) against `sampler.sample_tokens`.

    python tests/gpu/sampler_bench.py OUT.json [repeats]

For batch 64, 256 and 1024 x vocabulary 128,256 bf16 logits and three sampling modes (greedy, temperature 0.8,
temperature 0.8 + top_p 0.95) it times both samplers with CUDA events after a warm-up, two ways: `hot` (calls back
to back, the logits possibly resident in L2 when they fit in it) and `cold` (the L2 flushed before each timed call;
the median). It reports microseconds, the effective bandwidth (the logits' bytes once, over the time) and its share
of 4.8 TB/s, checks the kernel's tokens against the PyTorch reference on the same GPU (and counts where the old
sampler differs, which it may by one ulp of x / T against x * fp32(1/T)), checks that a CUDA graph of the kernel
replays the same tokens, and writes everything to OUT.json.
"""
import json
import sys
import time

import torch

from thinkfast import sampler
from thinkfast.bench import time_fn
from thinkfast.records import run_info
from thinkfast.generate import SamplingParams, row_keys, sample
from thinkfast.layers import fused

PEAK_BYTES_PER_S = 4.8e12
_COMPILED = fused(sample)   # the engine's sampler before the kernel: `sample` under torch.compile
VOCAB = 128256
BATCHES = (64, 256, 1024)
MODES = {"greedy": SamplingParams(0.0), "temperature_0.8": SamplingParams(0.8),
         "temperature_0.8_top_p_0.95": SamplingParams(0.8, top_p=0.95)}


def make_inputs(batch: int, seed: int = 0):
    "Peaked bf16 logits (a few tokens far above the rest, as a trained model's), one key per row, a device step."
    g = torch.Generator(device="cuda").manual_seed(seed)
    x = torch.randn(batch, VOCAB, device="cuda", generator=g) * 2.5
    top = torch.randint(0, VOCAB, (batch, 8), device="cuda", generator=g)
    x.scatter_add_(1, top, torch.rand(batch, 8, device="cuda", generator=g) * 12)
    keys = row_keys(0, [[i] for i in range(batch)], 1).cuda()
    return x.bfloat16(), keys, torch.tensor(7, device="cuda")


def time_hot(fn, repeats: int) -> float:
    "Microseconds per call, `repeats` calls back to back after five untimed ones (`bench.time_fn`)."
    return 1e6 * time_fn(fn, "cuda", repeats=1, warmup=5, inner=repeats)


def time_cold(fn, repeats: int, flush: torch.Tensor) -> float:
    "Median microseconds per call, the L2 flushed (a 256 MiB write) before each (`bench.time_fn`'s setup)."
    return 1e6 * time_fn(fn, "cuda", repeats=repeats, warmup=1, setup=flush.zero_)


def graph_replays_same(x, keys, step, sp, want) -> bool:
    "The kernel captured in a CUDA graph (step read from device memory) replays the same tokens."
    out = torch.empty_like(want)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s): sampler.sample_tokens(x, keys, step, sp, out=out)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g): sampler.sample_tokens(x, keys, step, sp, out=out)
    out.zero_()
    g.replay()
    torch.cuda.synchronize()
    return bool(torch.equal(out, want))


def bench_one(batch: int, name: str, sp: SamplingParams, repeats: int, flush: torch.Tensor) -> dict:
    x, keys, step = make_inputs(batch)
    out = torch.empty(batch, dtype=torch.int64, device="cuda")
    new = lambda: sampler.sample_tokens(x, keys, step, sp, out=out)
    old = lambda: _COMPILED(x, keys, step, sp)
    got = new().clone()
    want = sampler.reference_sample(x, keys, step, sp)
    row = dict(batch=batch, mode=name, vocab=VOCAB, dtype="bfloat16", logits_bytes=x.numel() * x.element_size(),
               kernel_vs_reference_mismatches=int((got != want).sum()),
               graph_replay_equal=graph_replays_same(x, keys, step, sp, got))
    t0 = time.perf_counter()
    try:                                    # the compiled sampler may fail to compile (as top-p at 128,256 did)
        old_tokens = old()
        torch.cuda.synchronize()
        row.update(old_first_call_s=time.perf_counter() - t0, kernel_vs_old_mismatches=int((got != old_tokens).sum()))
        timed = (("old", old), ("new", new))
    except Exception as e:
        row["old_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        timed = (("new", new),)
    for label, fn in timed:
        for how, us in (("hot", time_hot(fn, repeats)), ("cold", time_cold(fn, repeats, flush))):
            gbs = row["logits_bytes"] / (us * 1e-6) / 1e9
            row[f"{label}_{how}_us"] = round(us, 2)
            row[f"{label}_{how}_GBps"] = round(gbs, 1)
            row[f"{label}_{how}_pct_of_4.8TBps"] = round(100 * gbs * 1e9 / PEAK_BYTES_PER_S, 1)
    print(f"batch {batch:5d} {name:28s} old {row.get('old_cold_us', float('nan')):9.1f} us  new {row['new_cold_us']:8.1f} us "
          f"({row['new_cold_pct_of_4.8TBps']:5.1f}% of 4.8 TB/s)  "
          f"mismatches vs ref {row['kernel_vs_reference_mismatches']}  graph {row['graph_replay_equal']}", flush=True)
    return row


def main():
    if len(sys.argv) not in (2, 3): sys.exit(__doc__)
    path, repeats = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 50
    if not torch.cuda.is_available(): sys.exit("sampler_bench.py needs a CUDA device")
    import triton
    flush = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
    rows = []
    info = dict(run=run_info("cuda"), triton=triton.__version__, repeats=repeats, block=sampler.BLOCK, num_warps=sampler.NUM_WARPS,
                peak_bytes_per_s=PEAK_BYTES_PER_S, results=rows)
    for b in BATCHES:
        for name, sp in MODES.items():
            rows.append(bench_one(b, name, sp, repeats, flush))
            with open(path, "w") as f: json.dump(info, f, indent=1)      # after every point: a stopped run keeps what it did
    print(f"wrote {path}")
    ok = all(r["kernel_vs_reference_mismatches"] == 0 and r["graph_replay_equal"] for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
