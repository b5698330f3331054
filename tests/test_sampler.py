"""The bandwidth sampler (thinkfast/sampler.py): its PyTorch reference against the exact filtered softmax and
against `generate.sample`, and its Triton kernel (under TRITON_INTERPRET=1 on CPU) token for token against the
reference. The reference tests run without triton; the kernel tests skip when triton is absent."""
import math
import os

import torch

if not torch.cuda.is_available(): os.environ.setdefault("TRITON_INTERPRET", "1")    # conftest.py sets it first

import pytest

from thinkfast import sampler as S
from thinkfast.generate import SamplingParams, filter_logits, row_keys, sample

MODES = {"greedy": SamplingParams(0.0), "temperature": SamplingParams(0.8), "top_k": SamplingParams(0.8, top_k=40),
         "top_p": SamplingParams(0.8, top_p=0.9), "top_k_top_p": SamplingParams(1.3, top_p=0.7, top_k=40)}


DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def logits_for(rows: int, vocab: int, scale: float, seed: int, dtype=torch.bfloat16) -> torch.Tensor:
    "Random logits: scale 3 is peaked like a trained model's, scale 0.3 flat (the filters then reject often)."
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(rows, vocab, generator=g) * scale).to(dtype)


def keys_for(rows: int, seed: int = 0) -> torch.Tensor:
    return row_keys(seed, [[1, 2, 3]], rows)


def kernel():
    "The kernel's entry point, or a skip where triton is absent (or, without CUDA, not in interpreter mode)."
    tl = pytest.importorskip("triton.language")
    if not torch.cuda.is_available() and type(tl.standard.cumsum).__name__ != "InterpretedFunction":
        pytest.skip("no CUDA and triton was imported before TRITON_INTERPRET=1 was set")
    def sample_tokens(x, keys, step, sp, block=S.BLOCK):
        "The kernel on the test device (CUDA where there is one), tokens back on the CPU."
        step = step.to(DEVICE) if isinstance(step, torch.Tensor) else step
        return S.sample_tokens(x.to(DEVICE), keys.to(DEVICE), step, sp, block=block).cpu()
    return sample_tokens


def ref(x, keys, step, sp):
    "The reference on the kernel's device (on CUDA both take logf from the same library)."
    return S.reference_sample(x.to(DEVICE), keys.to(DEVICE), step, sp).cpu()


# --------------------------------------------------------------------------------------- reference, no triton

def test_strictly_better_mass_counts_no_ties():
    y = torch.tensor([[1.0, 3.0, 3.0, 2.0, -math.inf]])
    w = torch.tensor([[1.0, 10.0, 20.0, 100.0, 0.0]], dtype=torch.float64)
    got = S.strictly_better_mass(y, w)
    assert got.tolist() == [[130.0, 0.0, 0.0, 30.0, 131.0]]


def test_kept_tokens_keeps_or_drops_ties_together():
    y = torch.tensor([[2.0, 1.0, 2.0, 0.0, 1.0]])
    assert S.kept_tokens(y, SamplingParams(1.0, top_k=1)).tolist() == [[True, False, True, False, False]]
    assert S.kept_tokens(y, SamplingParams(1.0, top_k=3)).tolist() == [[True, True, True, False, True]]
    # the two best hold ~0.79 of the mass: each has 0 strictly-better mass, so top_p=0.1 keeps both, and the 1s
    # (strictly-better mass 0.79) are kept iff top_p > 0.79
    assert S.kept_tokens(y, SamplingParams(1.0, top_p=0.1)).tolist() == [[True, False, True, False, False]]
    assert S.kept_tokens(y, SamplingParams(1.0, top_p=0.8)).tolist() == [[True, True, True, False, True]]


@pytest.mark.parametrize("name", ["top_k", "top_p", "top_k_top_p"])
def test_kept_tokens_equals_filter_logits_without_ties(name):
    "On tie-free fp32 logits the brief's value semantics and `generate.filter_logits` keep the same tokens."
    sp = MODES[name]
    x = logits_for(64, 3000, 2.0, 1, torch.float32)
    old = torch.isfinite(filter_logits(x, sp))
    assert torch.equal(S.kept_tokens(S.scaled_logits(x, sp.temperature), sp), old)


@pytest.mark.parametrize("name", list(MODES))
def test_reference_equals_generate_sample(name):
    "Same noise, same kept set: the reference draws `generate.sample`'s tokens (temperatures of exact inverse)."
    sp = SamplingParams(0.5 if MODES[name].temperature else 0.0, MODES[name].top_p, MODES[name].top_k)
    x = logits_for(128, 2000, 1.0, 2, torch.float32)
    keys = keys_for(128)
    assert torch.equal(S.reference_sample(x, keys, 7, sp), sample(x, keys, 7, sp))


def exact_law(x: torch.Tensor, sp: SamplingParams) -> torch.Tensor:
    "The categorical over the filtered softmax, in float64."
    y = S.scaled_logits(x, sp.temperature)
    return torch.where(S.kept_tokens(y, sp), y.double(), -math.inf).softmax(-1)[0]


def chi_square(counts: torch.Tensor, probs: torch.Tensor) -> float:
    n = counts.sum()
    kept = probs > 0
    return float(((counts[kept] - n * probs[kept]) ** 2 / (n * probs[kept])).sum())


@pytest.mark.parametrize("sp", [SamplingParams(0.7), SamplingParams(0.7, top_k=6), SamplingParams(0.7, top_p=0.8),
                                SamplingParams(1.0, top_p=0.6, top_k=9)])
def test_reference_distribution_is_the_filtered_softmax(sp):
    """40,000 keys on a 12-token vocabulary: dropped tokens never drawn, and the counts fit the filtered softmax
    (chi-square with <= 11 degrees of freedom below 45, p < 1e-5 under the right law)."""
    x = torch.tensor([[3.0, 2.6, 2.2, 2.0, 1.5, 1.2, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0]])
    n = 40_000
    probs = exact_law(x, sp)
    toks = S.reference_sample(x.expand(n, -1), keys_for(n, 3), 11, sp)
    counts = torch.bincount(toks, minlength=x.shape[1]).double()
    assert counts[probs == 0].sum() == 0
    assert chi_square(counts, probs) < 45
    assert (counts / n - probs).abs().sum() / 2 < 0.01                    # total variation


def test_bad_parameters_raise_value_errors():
    for kw, word in [(dict(temperature=-1.0), "temperature"), (dict(temperature=math.nan), "temperature"),
                     (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(top_k=-1), "top_k"),
                     (dict(top_k=2.5), "top_k")]:
        with pytest.raises(ValueError, match=word): SamplingParams(**kw)
    x, keys = logits_for(2, 10, 1.0, 0), keys_for(2)
    with pytest.raises(ValueError, match="2-D"): S.reference_sample(x[0], keys, 0, SamplingParams())
    with pytest.raises(ValueError, match="dtype"): S.reference_sample(x.long(), keys, 0, SamplingParams())
    with pytest.raises(ValueError, match="one key per row"): S.reference_sample(x, keys[:1], 0, SamplingParams())
    with pytest.raises(ValueError, match="int64"): S.reference_sample(x, keys.int(), 0, SamplingParams())
    with pytest.raises(ValueError, match="SamplingParams"): S.reference_sample(x, keys, 0, dict(temperature=1))


def test_reads_per_row():
    assert S.reads_per_row(MODES["greedy"], 128256) == 1
    assert S.reads_per_row(MODES["temperature"], 128256) == 1
    assert S.reads_per_row(MODES["top_k"], 128256) == 2
    assert S.reads_per_row(MODES["top_k"], 128256, torch.float32, outside_topk=True) == 5
    assert S.reads_per_row(MODES["top_p"], 128256, rejections=1) == 4
    assert S.reads_per_row(MODES["top_k_top_p"], 128256) == 3


# ------------------------------------------------------------------------------------- kernel vs reference

@pytest.mark.parametrize("name", list(MODES))
@pytest.mark.parametrize("rows,vocab,block,scale", [(6, 1000, 256, 3.0), (6, 1000, 256, 0.3), (1, 4099, 1024, 1.0),
                                                    (2, 128256, 2048, 2.0)])
def test_kernel_equals_reference(name, rows, vocab, block, scale):
    "Token for token, on vocabularies that are not a multiple of the block, peaked and flat logits, batch 1."
    sample_tokens, sp = kernel(), MODES[name]
    x, keys = logits_for(rows, vocab, scale, rows * vocab), keys_for(rows, 5)
    assert torch.equal(sample_tokens(x, keys, 9, sp, block=block), ref(x, keys, 9, sp))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
@pytest.mark.parametrize("name", ["greedy", "top_k", "top_k_top_p"])
def test_kernel_other_dtypes(dtype, name):
    "fp16 (16-bit order keys) and fp32 (32-bit keys: three radix reads past the first) logits."
    sample_tokens, sp = kernel(), MODES[name]
    x, keys = logits_for(4, 700, 0.5, 3, dtype), keys_for(4, 6)
    assert torch.equal(sample_tokens(x, keys, 2, sp, block=256), ref(x, keys, 2, sp))


@pytest.mark.parametrize("name", list(MODES))
def test_kernel_ties_and_masked_tokens(name):
    """Many equal logits (ties at the arg-max, at the k-th value and at the top-p boundary), -inf tokens, a row
    with a single finite token and a row of all -inf (token 0, as torch.argmax)."""
    sample_tokens, sp = kernel(), MODES[name]
    g = torch.Generator().manual_seed(4)
    x = torch.randint(-3, 4, (5, 600), generator=g).float()
    x[1, ::3] = -math.inf
    x[2] = -math.inf
    x[2, 417] = 1.0
    x[3, :] = 2.0
    x[4] = -math.inf
    x = x.bfloat16()
    keys = keys_for(5, 7)
    if name == "greedy": assert sample_tokens(x, keys, 0, sp, block=256)[[0, 3, 4]].tolist() == [x[0].argmax(), 0, 0]
    assert torch.equal(sample_tokens(x, keys, 0, sp, block=256), ref(x, keys, 0, sp))


def test_kernel_exercises_rejections():
    "On flat logits the unfiltered winner is often outside the kept set: the re-race paths run and still agree."
    sample_tokens = kernel()
    x, keys = logits_for(16, 500, 0.3, 8), keys_for(16, 8)
    free = ref(x, keys, 1, SamplingParams(1.0))
    for sp in [SamplingParams(1.0, top_k=5), SamplingParams(1.0, top_p=0.2), SamplingParams(1.0, 0.3, 20)]:
        want = ref(x, keys, 1, sp)
        assert (want != free).sum() >= 8                                  # most rows took a re-race
        assert torch.equal(sample_tokens(x, keys, 1, sp, block=256), want)


@pytest.mark.parametrize("name", ["temperature", "top_k_top_p"])
def test_kernel_row_is_independent_of_the_batch(name):
    "Row r's token is the same alone, in its batch, and among other rows in another order."
    sample_tokens, sp = kernel(), MODES[name]
    x, keys = logits_for(6, 900, 1.0, 10), keys_for(6, 9)
    full = sample_tokens(x, keys, 4, sp, block=256)
    alone = torch.cat([sample_tokens(x[r:r + 1], keys[r:r + 1], 4, sp, block=256) for r in range(6)])
    perm = torch.tensor([3, 5, 0, 2, 4, 1])
    other = logits_for(3, 900, 1.0, 11)
    mixed = sample_tokens(torch.cat([x[perm], other]), torch.cat([keys[perm], keys_for(3, 99)]), 4, sp, block=256)
    assert torch.equal(full, alone)
    assert torch.equal(mixed[:6], full[perm])


def test_kernel_step_as_tensor_and_noise_changes_with_step():
    sample_tokens, sp = kernel(), MODES["temperature"]
    x, keys = torch.zeros(8, 300, dtype=torch.bfloat16), keys_for(8, 1)
    a = sample_tokens(x, keys, 5, sp, block=256)
    assert torch.equal(a, sample_tokens(x, keys, torch.tensor(5), sp, block=256))
    assert torch.equal(a, ref(x, keys, 5, sp))
    assert not torch.equal(a, sample_tokens(x, keys, 6, sp, block=256))


def test_kernel_distribution_agrees_with_the_reference_draws():
    "96 keys on the 12-token vocabulary of the distribution test: the kernel draws the reference's tokens."
    sample_tokens, sp = kernel(), SamplingParams(1.0, top_p=0.6, top_k=9)
    x = torch.tensor([[3.0, 2.6, 2.2, 2.0, 1.5, 1.2, 1.0, 0.5, 0.0, -0.5, -1.0, -3.0]]).expand(96, -1).contiguous()
    keys = keys_for(96, 3)
    toks = sample_tokens(x, keys, 11, sp, block=256)
    assert torch.equal(toks, ref(x, keys, 11, sp))
    assert exact_law(x[:1], sp)[toks].min() > 0


def test_kernel_bad_arguments():
    sample_tokens = kernel()
    x, keys = logits_for(2, 300, 1.0, 0), keys_for(2)
    with pytest.raises(ValueError, match="block"): sample_tokens(x, keys, 0, SamplingParams(), block=100)
    with pytest.raises(ValueError, match="step"): sample_tokens(x, keys, torch.tensor([1, 2]), SamplingParams())
    with pytest.raises(ValueError, match="one key per row"): sample_tokens(x, keys[:1], 0, SamplingParams())


@pytest.mark.parametrize("name", list(MODES))
def test_nan_logits_count_as_minus_inf(name):
    "A NaN logit is never drawn, in the kernel and in the reference alike (a broken model must not hang the step)."
    sp = MODES[name]
    x = logits_for(3, 700, 2.0, 12, torch.float32)
    x[0, 5] = math.nan
    x[1, ::2] = math.nan
    x[2] = math.nan
    x[2, 42] = 1.0
    keys = keys_for(3, 4)
    want = S.reference_sample(x, keys, 3, sp)
    clean = S.reference_sample(x.nan_to_num(nan=-math.inf), keys, 3, sp)
    assert torch.equal(want, clean) and want[2] == 42
    assert not x[torch.arange(3), want].isnan().any()
    if pytest.importorskip("triton", reason="kernel half needs triton") and not (torch.cuda.is_available() or
                                                                                  os.environ.get("TRITON_INTERPRET") == "1"):
        pytest.skip("no CUDA and no interpreter")
    assert torch.equal(kernel()(x.bfloat16(), keys, 3, sp, block=256), ref(x.bfloat16(), keys, 3, sp))


def test_top_p_that_rounds_to_zero_keeps_the_best_token():
    "top_p = 1e-50 is 0 in fp32: both samplers keep the best token(s) and end (the kernel's re-race used to loop)."
    sp = SamplingParams(1.0, top_p=1e-50)
    x = logits_for(4, 500, 1.0, 13, torch.float32)
    keys = keys_for(4, 2)
    assert torch.equal(S.reference_sample(x, keys, 0, sp), x.argmax(-1))
    assert torch.equal(kernel()(x, keys, 0, sp, block=256), x.argmax(-1))
