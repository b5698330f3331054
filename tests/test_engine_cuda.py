"""On a CUDA GPU: the engine's graph-replayed decoding writes the same tokens as eager decoding, for the attention
teacher, a hybrid and a Llamba (small random bf16 models), greedy and sampled, with the one-kernel Mamba step on and
off, in bf16 and fp32 SSM state. Skipped (and reported) without CUDA: on the CPU there are no graphs to replay."""
import pytest
import torch

from thinkfast import layers
from thinkfast.generate import Engine, SamplingParams
from thinkfast.students import ThinkfastConfig, ThinkfastForCausalLM

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

MIXERS = {"llama": ["attention"] * 4, "hybrid": ["mambainllama", "attention", "mambainllama", "attention"], "llamba": ["llamba"] * 4}


def model(kind: str, state: str):
    cfg = ThinkfastConfig(vocab_size=97, hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=32, max_position_embeddings=1024, layer_mixers=MIXERS[kind],
                          llamba_d_state=32, ssm_state_dtype=state)
    torch.manual_seed(0)
    with torch.device("cuda"): return ThinkfastForCausalLM(cfg).to(torch.bfloat16).eval()


@pytest.fixture(autouse=True)
def _restore_kernel_options():
    before = dict(layers.kernel_options())
    yield
    layers.set_kernel_options(**before)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-step", "chain"])
@pytest.mark.parametrize("state", ["bfloat16", "float32"])
@pytest.mark.parametrize("kind", list(MIXERS))
def test_graph_replay_equals_eager(kind, state, fused):
    layers.set_kernel_options(mamba_step=fused)
    m = model(kind, state)
    prompts = [[5, 6, 7], [9] * 11, list(range(3, 40))]
    for sp in (SamplingParams(0.0), SamplingParams(0.8, top_p=0.9)):
        got = [Engine(m, cuda_graph=g).generate_ids(prompts, n=3, max_new_tokens=300, sampling=sp, seed=1) for g in (True, False)]
        assert got[0]["timings"]["cuda_graph"] and not got[1]["timings"]["cuda_graph"]
        assert got[0]["tokens"] == got[1]["tokens"], (kind, state, fused, sp)
