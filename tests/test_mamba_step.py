"""The lean Mamba-2 decode step (thinkfast/mamba_step.py): today's chain and the PyTorch reference against the mixers'
own `step`, and the Triton kernel (under TRITON_INTERPRET=1 on CPU) against the reference over several steps. The
reference tests run without triton; the kernel tests skip when triton is absent."""
import os

import torch

if not torch.cuda.is_available(): os.environ.setdefault("TRITON_INTERPRET", "1")    # conftest.py sets it first

import pytest

from thinkfast import mamba_step as MS
from thinkfast.layers import LlambaMixer, MambaCache, MambaInLlamaMixer, Mamba1Mixer, mamba2_init
from thinkfast.ssd import rel_err

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
F32, BF16 = torch.float32, torch.bfloat16

# small shapes, headdim and d_state not powers of two (the kernel's masks), groups of heads sharing B (and C or x)
MIXERS = {
    "llamba_qk2_zbias": (LlambaMixer, dict(d_model=16, nheads=4, headdim=6, d_state=5, qk_heads=2, z_bias=True)),
    "llamba_plain": (LlambaMixer, dict(d_model=12, nheads=3, headdim=8, d_state=4)),
    "mil_gqa": (MambaInLlamaMixer, dict(d_model=16, n_heads=4, n_kv_heads=2, head_dim=6)),
    "mil_gqa_norm": (MambaInLlamaMixer, dict(d_model=16, n_heads=6, n_kv_heads=2, head_dim=5, norm=True)),
    "mil_mha_norm": (MambaInLlamaMixer, dict(d_model=16, n_heads=2, n_kv_heads=2, head_dim=8, norm=True)),
}
DTYPES = [pytest.param(a, s, id=f"{str(a)[6:]}-state_{str(s)[6:]}")    # (activations, SSM state)
          for a, s in [(F32, F32), (F32, BF16), (BF16, F32), (BF16, BF16)]]


def make_mixer(name: str, dtype=F32, seed: int = 0, **over):
    "A mixer of MIXERS with every parameter random (Mamba-2's A_log and dt_bias ranges), cast to `dtype`."
    cls, kw = MIXERS[name]
    torch.manual_seed(seed)
    m = cls(**{**kw, **over})
    with torch.no_grad():
        for p in m.parameters(): p.copy_(torch.randn_like(p) * (0.5 if p.dim() > 1 else 1.0))
        if cls is MambaInLlamaMixer:
            for k, v in mamba2_init(m.nheads).items(): getattr(m, k).copy_(v)
    return m.to(device=DEVICE, dtype=dtype)


def make_cache(m, batch: int, dtype, state_dtype, seed: int = 1) -> MambaCache:
    "A cache with random conv and SSM states (a step from the middle of a sequence)."
    c = m.allocate_cache(batch, 0, dtype, DEVICE, ssm_state_dtype=state_dtype)
    g = torch.Generator().manual_seed(seed)
    c.conv_state.copy_(torch.randn(c.conv_state.shape, generator=g))
    c.ssm_state.copy_(torch.randn(c.ssm_state.shape, generator=g))
    return c


def clone(c: MambaCache) -> MambaCache: return MambaCache(c.conv_state.clone(), c.ssm_state.clone())


def tokens(m, batch: int, steps: int, dtype, seed: int = 2) -> list:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, m.d_model, generator=g).to(DEVICE, dtype) for _ in range(steps)]


def close(got, want, dtype, what: str):
    "fp32: a few ulps of the largest value; 16-bit: an ulp or two of the result (rounding-point flips)."
    tol = {torch.float32: 2e-6, torch.bfloat16: 2 ** -7, torch.float16: 2 ** -10}[dtype]
    err = rel_err(got, want)
    assert err <= tol, f"{what}: rel_err {err:.3g} > {tol:.3g}"


# --------------------------------------------------------------------------------------- reference, no triton

@pytest.mark.parametrize("name", list(MIXERS))
@pytest.mark.parametrize("dtype,state_dtype", DTYPES)
def test_chain_step_is_mixer_step(name, dtype, state_dtype):
    "Today's chain minus the projections, through out_proj, is `mixer.step` bit for bit (the benchmark's baseline)."
    m = make_mixer(name, dtype)
    c = make_cache(m, 3, dtype, state_dtype)
    c1, c2 = clone(c), clone(c)
    with torch.no_grad():
        for u in tokens(m, 3, 2, dtype):
            want = m.step(u, None, c1)
            got = m.out_proj(MS.chain_step(m, m.in_proj(u), c2.conv_state, c2.ssm_state))
            assert torch.equal(got, want)
    assert torch.equal(c1.conv_state, c2.conv_state) and torch.equal(c1.ssm_state, c2.ssm_state)


@pytest.mark.parametrize("name", list(MIXERS))
@pytest.mark.parametrize("dtype,state_dtype", DTYPES)
def test_reference_equals_mixer_step(name, dtype, state_dtype):
    """Four steps in a row from random caches: out_proj of the reference is `mixer.step`'s output, the gated output
    is the chain's, and the caches after every step agree."""
    m = make_mixer(name, dtype)
    c = make_cache(m, 3, dtype, state_dtype)
    c_step, c_chain, c_ref = clone(c), clone(c), clone(c)
    with torch.no_grad():
        for i, u in enumerate(tokens(m, 3, 4, dtype)):
            want = m.step(u, None, c_step)
            zx = m.in_proj(u)
            y_chain = MS.chain_step(m, zx, c_chain.conv_state, c_chain.ssm_state)
            y = MS.fused_step_reference(m, zx, c_ref.conv_state, c_ref.ssm_state)
            assert y.shape == (3, m.nheads * m.headdim) and y.dtype == dtype
            close(y, y_chain, dtype, f"step {i} gated output")
            close(m.out_proj(y), want, dtype, f"step {i} out_proj")
            assert torch.equal(c_ref.conv_state, c_step.conv_state)
            close(c_ref.ssm_state, c_step.ssm_state, state_dtype, f"step {i} ssm_state")


def test_head_channels_follow_the_groups():
    "Llamba: x per head, B and C per qk group; MambaInLlama: x and B per KV head, C per head."
    lam = make_mixer("llamba_qk2_zbias")                    # 4 heads, headdim 6, d_state 5, 2 qk groups
    ch = MS.head_channels(lam)
    assert ch["x"][1].tolist() == list(range(6, 12))
    assert ch["B"][0].tolist() == ch["B"][1].tolist() == list(range(24, 29))
    assert ch["C"][3].tolist() == list(range(24 + 10 + 5, 24 + 10 + 10))
    mil = make_mixer("mil_gqa")                              # 4 heads, 2 KV heads, head_dim 6
    ch = MS.head_channels(mil)
    assert ch["x"][0].tolist() == ch["x"][1].tolist() == list(range(0, 6))
    assert ch["B"][2].tolist() == ch["B"][3].tolist() == list(range(12 + 6, 12 + 12))
    assert ch["C"][1].tolist() == list(range(24 + 6, 24 + 12))


def test_bad_inputs_raise_value_errors():
    m = make_mixer("mil_gqa")
    c = make_cache(m, 2, F32, F32)
    zx = torch.zeros(2, m.in_proj.out_features, device=DEVICE)
    with pytest.raises(ValueError, match="LlambaMixer or MambaInLlamaMixer"):
        MS.fused_step_reference(Mamba1Mixer(16, 32, 16, d_state=8), zx, c.conv_state, c.ssm_state)
    with pytest.raises(ValueError, match=r"zxbcdt of shape \(2, 10\); allowed: \(batch, "):
        MS.fused_step_reference(m, zx[:, :10], c.conv_state, c.ssm_state)
    with pytest.raises(ValueError, match="zxbcdt of dtype torch.int64"):
        MS.fused_step_reference(m, zx.long(), c.conv_state, c.ssm_state)
    with pytest.raises(ValueError, match="conv_state of shape"):
        MS.fused_step_reference(m, zx, c.conv_state[:1], c.ssm_state)
    with pytest.raises(ValueError, match="ssm_state of shape"):
        MS.fused_step_reference(m, zx, c.conv_state, c.ssm_state[..., :2])
    with pytest.raises(ValueError, match="ssm_state of dtype torch.int32"):
        MS.fused_step_reference(m, zx, c.conv_state, c.ssm_state.int())


def test_step_bytes_of_llamba_1b():
    "Llamba-1B's shape at batch 256: 64 MiB of fp32 state, read and written, is almost all the traffic."
    m = LlambaMixer(2048, 32, 64, 64, z_bias=True).to(device="meta", dtype=BF16)
    b = MS.step_bytes(m, 256, BF16, F32)
    assert b["ssm_state"] == 2 * 256 * 32 * 64 * 64 * 4
    assert b["conv_state"] == 2 * 256 * (2048 + 2 * 2048) * 3 * 2
    assert b["inputs"] == 256 * (2 * 2048 + 2 * 2048 + 32) * 2
    assert b["total"] == sum(v for k, v in b.items() if k != "total")
    assert b["ssm_state"] / b["total"] > 0.9


# ------------------------------------------------------------------------------------- kernel vs reference

def kernel():
    "The kernel's entry point, or a skip where triton is absent (or, without CUDA, not in interpreter mode)."
    tl = pytest.importorskip("triton.language")
    if not torch.cuda.is_available() and type(tl.standard.cumsum).__name__ != "InterpretedFunction":
        pytest.skip("no CUDA and triton was imported before TRITON_INTERPRET=1 was set")
    return MS.fused_step


def run_both(m, cache, us, dtype, fused, **kw):
    "The kernel and the reference from the same cache over the tokens `us`; the outputs of each and the caches."
    ck, cr = clone(cache), clone(cache)
    yk, yr = [], []
    with torch.no_grad():
        for u in us:
            zx = m.in_proj(u)
            yk.append(fused(m, zx, ck.conv_state, ck.ssm_state, **kw).clone())
            yr.append(MS.fused_step_reference(m, zx, cr.conv_state, cr.ssm_state))
    return yk, yr, ck, cr


@pytest.mark.parametrize("name", list(MIXERS))
@pytest.mark.parametrize("dtype,state_dtype", DTYPES)
def test_kernel_equals_reference(name, dtype, state_dtype):
    "Three steps in a row (the state carries): gated outputs, conv state (exactly) and SSM state."
    fused = kernel()
    m = make_mixer(name, dtype)
    yk, yr, ck, cr = run_both(m, make_cache(m, 3, dtype, state_dtype), tokens(m, 3, 3, dtype), dtype, fused)
    for i, (a, b) in enumerate(zip(yk, yr)):
        assert a.dtype == b.dtype == dtype
        close(a, b, dtype, f"step {i} output")
    assert torch.equal(ck.conv_state, cr.conv_state)
    close(ck.ssm_state, cr.ssm_state, state_dtype, "ssm_state")


@pytest.mark.parametrize("d_conv", [2, 3])
@pytest.mark.parametrize("name", ["llamba_qk2_zbias", "mil_gqa_norm"])
def test_kernel_conv_widths(name, d_conv):
    "Conv widths 2 and 3 (a padded tap column for 3), bf16 activations and fp32 state."
    fused = kernel()
    m = make_mixer(name, BF16, d_conv=d_conv)
    yk, yr, ck, cr = run_both(m, make_cache(m, 2, BF16, F32), tokens(m, 2, 2, BF16), BF16, fused)
    for a, b in zip(yk, yr): close(a, b, BF16, "output")
    assert torch.equal(ck.conv_state, cr.conv_state)
    close(ck.ssm_state, cr.ssm_state, F32, "ssm_state")


@pytest.mark.parametrize("name", ["llamba_qk2_zbias", "mil_gqa_norm"])
def test_kernel_rows_are_independent(name):
    "Each row's output and caches are the same alone, in its batch, and among other rows in another order."
    fused = kernel()
    m = make_mixer(name, BF16)
    cache, (u,) = make_cache(m, 4, BF16, F32), tokens(m, 4, 1, BF16)
    zx = m.in_proj(u).detach()
    full = clone(cache)
    y = fused(m, zx, full.conv_state, full.ssm_state)
    for r in range(4):
        one = MambaCache(cache.conv_state[r:r + 1].clone(), cache.ssm_state[r:r + 1].clone())
        assert torch.equal(fused(m, zx[r:r + 1], one.conv_state, one.ssm_state), y[r:r + 1])
        assert torch.equal(one.conv_state, full.conv_state[r:r + 1])
        assert torch.equal(one.ssm_state, full.ssm_state[r:r + 1])
    perm = torch.tensor([2, 0, 3, 1])
    mixed = MambaCache(cache.conv_state[perm].clone(), cache.ssm_state[perm].clone())
    assert torch.equal(fused(m, zx[perm], mixed.conv_state, mixed.ssm_state), y[perm])
    assert torch.equal(mixed.ssm_state, full.ssm_state[perm])


def test_kernel_strided_inputs_update_in_place():
    """zxbcdt a column slice of a wider tensor, the caches every other row of larger ones (and the SSM state with
    its last two axes swapped in memory): the updates land in the larger tensors, the skipped rows untouched."""
    fused = kernel()
    m = make_mixer("llamba_qk2_zbias", BF16)
    cache = make_cache(m, 3, BF16, F32)
    (u,) = tokens(m, 3, 1, BF16)
    zx = m.in_proj(u).detach()
    wide = torch.zeros(3, zx.shape[1] + 7, dtype=BF16, device=DEVICE)
    wide[:, 3:3 + zx.shape[1]] = zx
    big_conv = torch.zeros(6, *cache.conv_state.shape[1:], dtype=BF16, device=DEVICE)
    big_conv[::2] = cache.conv_state
    big_ssm = torch.zeros(6, m.nheads, m.d_state, m.headdim, device=DEVICE)   # (…, dstate, headdim) in memory
    big_ssm[::2] = cache.ssm_state.transpose(-1, -2)
    ref = clone(cache)
    want = MS.fused_step_reference(m, zx, ref.conv_state, ref.ssm_state)
    got = fused(m, wide[:, 3:3 + zx.shape[1]], big_conv[::2], big_ssm[::2].transpose(-1, -2))
    close(got, want, BF16, "output")
    assert torch.equal(big_conv[::2], ref.conv_state) and not big_conv[1::2].any()
    close(big_ssm[::2].transpose(-1, -2), ref.ssm_state, F32, "ssm_state")
    assert not big_ssm[1::2].any()


def test_kernel_fp16_into_out():
    "fp16 activations and state, the output written into a given buffer."
    fused = kernel()
    m = make_mixer("mil_gqa", torch.float16)
    out = torch.empty(2, m.nheads * m.headdim, dtype=torch.float16, device=DEVICE)
    yk, yr, ck, cr = run_both(m, make_cache(m, 2, torch.float16, torch.float16), tokens(m, 2, 2, torch.float16),
                              torch.float16, fused, out=out)
    assert yk[-1].data_ptr() != out.data_ptr() and torch.equal(out, yk[-1])      # run_both clones what it gets
    for a, b in zip(yk, yr): close(a, b, torch.float16, "output")
    close(ck.ssm_state, cr.ssm_state, torch.float16, "ssm_state")


def test_kernel_bad_inputs():
    fused = kernel()
    m = make_mixer("mil_gqa", torch.float64)
    c = make_cache(m, 2, torch.float64, torch.float64)
    zx = torch.zeros(2, m.in_proj.out_features, dtype=torch.float64, device=DEVICE)
    with pytest.raises(ValueError, match="zxbcdt of dtype torch.float64; allowed"):
        fused(m, zx, c.conv_state, c.ssm_state)
    m = make_mixer("mil_gqa", F32, d_conv=5)
    c = make_cache(m, 2, F32, F32)
    zx = torch.zeros(2, m.in_proj.out_features, device=DEVICE)
    with pytest.raises(ValueError, match="d_conv=5; allowed: 2, 3 or 4"): fused(m, zx, c.conv_state, c.ssm_state)
    m = make_mixer("mil_gqa", F32)
    c = make_cache(m, 2, F32, F32)
    with pytest.raises(ValueError, match="num_warps=3"): fused(m, zx, c.conv_state, c.ssm_state, num_warps=3)
    with pytest.raises(ValueError, match="out of shape"):
        fused(m, zx, c.conv_state, c.ssm_state, out=torch.empty(2, 5, device=DEVICE))


COMPILE_SM90 = r'''
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from thinkfast import mamba_step as MS
k = MS._mamba_step_kernel
const = {n for n, p in zip(k.arg_names, k.params) if p.is_constexpr}
for act, state, llamba, norm, group in [("bf16", "fp32", True, False, 1), ("bf16", "bf16", False, True, 4),
                                        ("fp32", "fp32", False, False, 4)]:
    ptrs = {"S": state, **{n: act for n in ("ZX", "CS", "CW", "CB", "A", "Dp", "DTB", "ZB", "NW", "Y")}}
    sig = {n: "constexpr" if n in const else "*" + ptrs[n] if n in ptrs else "fp32" if n == "eps"
           else "i64" if n in ("szb", "scb", "ssb", "syb") else "i32" for n in k.arg_names}
    cx = dict(XBC_OFF=0, Z_OFF=4096, DT_OFF=6144, X_OFF=0, B_OFF=2048, C_OFF=2560, G=group, P=64, N=64, PP=64,
              NP=64, W=4, WP=4, LLAMBA=llamba, X_SHARED=not llamba, C_SHARED=llamba, CONV_SILU=not llamba,
              A_IS_LOG=not llamba, HAS_Z_BIAS=llamba, NORM=norm)
    src = ASTSource(fn=k, signature=sig, constexprs={(k.arg_names.index(n),): v for n, v in cx.items()})
    c = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": MS.default_num_warps(64, 64)})
    assert "cubin" in c.asm and "bar.sync" in c.asm["ptx"], (act, state, llamba)
print("compiled")
'''


def test_kernel_compiles_for_sm90_without_a_gpu():
    """The interpreter runs Python; the compiler is stricter. Compile the kernel to PTX and a cubin for sm_90 (the
    H200) in a process without TRITON_INTERPRET: Llamba, MambaInLlama with the norm, fp32 and bf16."""
    pytest.importorskip("triton")
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, "-c", COMPILE_SM90], capture_output=True, text=True, env=env, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if r.returncode and any(w in r.stderr for w in ("ptxas", "GPUTarget", "triton.backends")):
        pytest.skip(f"no CUDA compiler toolchain in this triton: {r.stderr.strip().splitlines()[-1][:200]}")
    assert r.returncode == 0 and "compiled" in r.stdout, r.stderr[-3000:]


# ------------------------------------------------------------------------------------------ in the models

@pytest.fixture
def mamba_step_option():
    "The layers' kernel option `mamba_step` as it was, after the test."
    from thinkfast.layers import set_kernel_options
    before = set_kernel_options()
    yield set_kernel_options
    set_kernel_options(**before)


def _model(dtype=F32):
    from thinkfast.students import ThinkfastConfig, ThinkfastForCausalLM
    torch.manual_seed(0)
    cfg = ThinkfastConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=4, llamba_headdim=6, llamba_d_state=5,
                          layer_mixers=["llamba", "mambainllama", "attention"])
    return ThinkfastForCausalLM(cfg).to(DEVICE, dtype).eval()


def test_models_decode_their_mamba_layers_through_fast_step(mamba_step_option):
    m = _model()
    assert [l.mixer.step_kernel for l in m.model.layers[:2]] == [MS.fast_step] * 2
    assert not hasattr(m.model.layers[2].mixer, "step_kernel")               # attention has no such step
    zx = torch.zeros(2, m.model.layers[0].mixer.in_proj.out_features, device=DEVICE)
    c = m.allocate_cache(2, 8)
    ready = MS.kernel_ready(m.model.layers[0].mixer, zx, c[0])
    mamba_step_option(mamba_step=False)
    assert not MS.kernel_ready(m.model.layers[0].mixer, zx, c[0])            # the option turns the kernel off ...
    mamba_step_option(mamba_step=True)
    assert MS.kernel_ready(m.model.layers[0].mixer, zx, c[0]) == ready       # ... and back on
    with pytest.raises(ValueError, match="mamba_step='yes'; allowed: True, False or None"):
        mamba_step_option(mamba_step="yes")


def test_kernel_ready_only_on_cuda_without_grad():
    m = make_mixer("llamba_plain")
    c = make_cache(m, 2, F32, F32)
    zx = torch.zeros(2, m.in_proj.out_features, device=DEVICE)
    assert MS.kernel_ready(m, zx, c) == (DEVICE == "cuda" and MS.triton is not None)
    with torch.enable_grad():
        assert not MS.kernel_ready(m, zx.requires_grad_(), c)
    assert not MS.kernel_ready(make_mixer("llamba_plain", dtype=torch.float64), zx.double(),
                               make_cache(make_mixer("llamba_plain", dtype=torch.float64), 2, torch.float64, torch.float64))


def test_model_decodes_through_the_kernel_as_through_the_chain():
    "Three decoding steps of a Llamba + MambaInLlama + attention model, every Mamba step in the kernel, against chains."
    kernel()
    forced = lambda m, zx, cache: MS.fused_step(m, zx, cache.conv_state, cache.ssm_state)
    a, b = _model(), _model()
    for l in a.model.layers[:2]: l.mixer.step_kernel = forced
    for l in b.model.layers[:2]: l.mixer.step_kernel = None                      # the chain
    ca, cb = a.allocate_cache(3, 8), b.allocate_cache(3, 8)
    with torch.no_grad():
        for t in range(3):
            ids = torch.randint(0, 50, (3,), device=DEVICE)
            close(a.step(ids, ca, torch.tensor(t, device=DEVICE)), b.step(ids, cb, torch.tensor(t, device=DEVICE)), F32, f"step {t}")
    assert torch.equal(ca[0].conv_state, cb[0].conv_state)    # the first layer's inputs are the same; later ones differ by ulps
    for x, y in zip(ca[:2], cb[:2]):
        close(x.conv_state, y.conv_state, F32, "conv_state")
        close(x.ssm_state, y.ssm_state, F32, "ssm_state")


def test_engine_keeps_a_decoder_per_step_path(mamba_step_option):
    from thinkfast.generate import Engine
    m = _model()
    eng = Engine(m, keep=2)
    d1 = eng.decoder(2, 16)
    mamba_step_option(mamba_step=False)
    d2 = eng.decoder(2, 16)
    assert d1 is not d2 and eng.decoder(2, 16) is d2
