"""One KL stage of a tiny distillation with the student sharded by FSDP, for tests/test_distributed.py (run it under
torchrun on CPU): `python -m torch.distributed.run --nproc_per_node 2 tests/fsdp_stage.py OUT DATA [FAIL_AT]`."""
import sys

import torch
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

from thinkfast import distill as D
from thinkfast.generate import char_tokenizer
from thinkfast.students import from_llama

out, data_path = sys.argv[1], sys.argv[2]
fail_at = int(sys.argv[3]) if len(sys.argv) > 3 else None
acc = Accelerator(cpu=True)
tok = char_tokenizer(); torch.manual_seed(0)
hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8))
teacher = from_llama(hf, attn_layers=range(2)).eval()
student = from_llama(hf, attn_layers=[], mixer="llamba")
data = D.packed_dataset(tok, D.read_pairs(data_path, limit=32), 1024)
stage = D.Stage("kl", "kl", "all", steps=6, lr=1e-3, warmup=2, checkpoint_every=2)
D.train_stage(student, teacher, data, stage, out, acc, progress=False, fail_at=fail_at, fsdp=True)
