"""The Mixer and Cache contract (students.MixerKind): a toy mixer registered from here, outside the package, runs
through conversion from a Llama teacher, eager generation by the engine (prefill, n samples per prompt, decoding
steps) and the bench's cost model, with nothing in thinkfast naming it."""
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

from thinkfast.bench import decode_cost
from thinkfast.generate import Engine, SamplingParams
from thinkfast.students import (MIXERS, MixerKind, ThinkfastConfig, ThinkfastForCausalLM, from_llama, mixer_kinds,
                                register_mixer, to_llama)


@dataclass
class EmaCache:
    "One running average per row: state `(batch, d)`."
    state: torch.Tensor

    def rows(self, lo, hi): return EmaCache(self.state[lo:hi])
    def expand_from(self, src, n, prompt_len): self.state.copy_(src.state.repeat_interleave(n, 0))
    def reset_(self): self.state.zero_()


class EmaMixer(nn.Module):
    "h_t = a * h_{t-1} + (1 - a) * in_proj(u_t), a = sigmoid(decay) per channel; out_proj(h_t). Left padding skipped."
    def __init__(self, d: int):
        super().__init__()
        self.in_proj, self.out_proj = nn.Linear(d, d, bias=False), nn.Linear(d, d, bias=False)
        self.decay = nn.Parameter(torch.zeros(d))

    def forward(self, u, rope=None, cache=None, pos0=0, pad=None, seq_idx=None):
        x, a = self.in_proj(u), torch.sigmoid(self.decay)
        h = cache.state.clone() if cache is not None else x.new_zeros(x.shape[0], x.shape[-1])
        out = []
        for t in range(x.shape[1]):
            new = a * h + (1 - a) * x[:, t]
            if pad is not None: new = torch.where((pos0 + t >= pad)[:, None], new, h)      # padding leaves h alone
            if seq_idx is not None and t > 0: new = torch.where((seq_idx[:, t] != seq_idx[:, t - 1])[:, None], (1 - a) * x[:, t], new)
            h = new
            out.append(h)
        if cache is not None: cache.state.copy_(h)
        return self.out_proj(torch.stack(out, 1))

    def step(self, u, rope, cache, pos=None, pad=None, kv_len=None):
        a = torch.sigmoid(self.decay)
        cache.state.copy_(a * cache.state + (1 - a) * self.in_proj(u))
        return self.out_proj(cache.state)

    def allocate_cache(self, batch, max_len, dtype, device, **_):
        return EmaCache(torch.zeros(batch, self.in_proj.in_features, dtype=dtype, device=device))

    def decode_cost(self, cache, ctx):
        return dict(kv_bytes=0, state_bytes=2 * cache.state.numel() * cache.state.element_size(), flops=3 * cache.state.numel())


@pytest.fixture(scope="module", autouse=True)
def ema_kind():
    register_mixer("ema", MixerKind(lambda c: EmaMixer(c.hidden_size), EmaMixer, init_weights=lambda m, init: init.zeros_(m.decay)))
    yield
    MIXERS.pop("ema")


def teacher():
    torch.manual_seed(0)
    cfg = ThinkfastConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=4, max_position_embeddings=256)
    return to_llama(ThinkfastForCausalLM(cfg).eval())


def test_registered_kind_is_a_layer_type():
    assert "ema" in mixer_kinds() and "ema" in mixer_kinds(student=True) and "attention" not in mixer_kinds(student=True)
    with pytest.raises(ValueError, match="'ema' is registered already"):
        register_mixer("ema", MIXERS["ema"])
    with pytest.raises(ValueError, match=r"layer_mixers\[1\]='nope'; allowed: attention, mambainllama, llamba, mamba1, ema"):
        ThinkfastConfig(num_hidden_layers=2, layer_mixers=["attention", "nope"])
    with pytest.raises(ValueError, match="spec is a dict; allowed: a MixerKind"):
        register_mixer("other", {})


def test_conversion_keeps_shared_weights():
    hf = teacher()
    s = from_llama(hf, attn_layers=[0], mixer="ema")
    assert s.config.layer_mixers == ["attention", "ema", "ema"]
    assert isinstance(s.model.layers[1].mixer, EmaMixer)
    assert torch.equal(s.model.layers[1].mixer.decay, torch.zeros(16))                  # its own initialisation
    assert torch.equal(s.model.embed_tokens.weight, hf.model.embed_tokens.weight)
    assert torch.equal(s.model.layers[2].mlp.up_proj.weight, hf.model.layers[2].mlp.up_proj.weight)
    assert torch.equal(s.model.layers[0].mixer.q_proj.weight, hf.model.layers[0].self_attn.q_proj.weight)


def test_engine_generates_with_it_as_full_forwards_do():
    "Greedy tokens from the engine (prefill, two samples per prompt, decoding steps) equal a loop of full forwards."
    s = from_llama(teacher(), attn_layers=[0], mixer="ema").eval()
    with torch.no_grad():
        for p in s.model.layers[1].mixer.parameters(): p.normal_(0, 0.3)
    prompts = [[1, 5, 7, 2], [3, 9]]
    out = Engine(s, cuda_graph=False).generate_ids(prompts, n=2, max_new_tokens=6, sampling=SamplingParams(0.0))
    for i, p in enumerate(prompts):
        ids = list(p)
        with torch.no_grad():
            for _ in range(6): ids.append(int(s(torch.tensor([ids])).logits[0, -1].argmax()))
        assert out["tokens"][2 * i] == out["tokens"][2 * i + 1] == ids[len(p):], i


def test_bench_cost_model_reads_its_cache():
    s = from_llama(teacher(), attn_layers=[0], mixer="ema")
    cost = decode_cost(s.config, batch=8, ctx=32, dtype=torch.float32)
    assert cost["state_bytes"] == 2 * 2 * 8 * 16 * 4                  # two ema layers, state read and written
    assert cost["kv_bytes"] == 2 * 8 * 2 * 32 * 4 * 4                 # one attention layer: k and v up to ctx
