"""A tiny distillation stage with the student sharded by FSDP, for tests/test_distributed.py (run it under torchrun on
CPU): `python -m torch.distributed.run --nproc_per_node 2 tests/fsdp_stage.py OUT DATA STAGE [FAIL_AT]`, STAGE one
of kl, matrix; or STAGE=gated: a background checkpoint write held back while training goes on must still hold the
state of its step (AdamW's step counts included), checked here."""
import sys
import threading

import torch
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

from thinkfast import distill as D
from thinkfast.generate import char_tokenizer
from thinkfast.students import from_llama

out, data_path, which = sys.argv[1], sys.argv[2], sys.argv[3]
fail_at = int(sys.argv[4]) if len(sys.argv) > 4 else None
acc = Accelerator(cpu=True)
tok = char_tokenizer(); torch.manual_seed(0)
hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8))
teacher = from_llama(hf, attn_layers=range(2)).eval()
student = from_llama(hf, attn_layers=[], mixer="llamba")
data = D.packed_dataset(tok, D.read_pairs(data_path, limit=32), 1024)
if which in ("kl", "matrix"):
    stage = (D.Stage("kl", "kl", "all", steps=6, lr=1e-3, warmup=2, checkpoint_every=2) if which == "kl" else
             D.Stage("matrix", "matrix", "mixers", steps=6, lr=1e-3, checkpoint_every=2))
    D.train_stage(student, teacher, data, stage, out, acc, progress=False, fail_at=fail_at, fsdp=True)
    sys.exit(0)

class Gated(D.CheckpointWriter):
    def __init__(self): super().__init__(); self.gate = threading.Event()
    def submit(self, fn): super().submit(lambda: (self.gate.wait(), fn()))

D.shard_student(student)
stage = D.Stage("kl", "kl", "all", steps=3, lr=1e-3)
opt = torch.optim.AdamW(stage.parameters(student), lr=1e-3)
def train_step(k):
    stage.compute(student, teacher, D._micro_batch(data, 2 * k + acc.process_index, 1, 0, "cpu")).backward(); opt.step(); opt.zero_grad()
train_step(0)
then, _ = D.full_state(student)
w = Gated() if acc.is_main_process else None
D.save_checkpoint(acc, D._StageLoss(student, teacher, stage), opt, out, 1, stage, writer=w)
train_step(1); train_step(2)                       # training goes on while the write waits at the gate
if acc.is_main_process:
    w.gate.set(); w.wait()
    ck = torch.load(f"{out}/checkpoint/state.pt", weights_only=False)
    steps = {float(v["step"]) for v in ck["optimizer"]["state"].values()}
    assert steps == {1.0}, f"AdamW step counts in the checkpoint: {steps}, expected 1 (the step it was taken at)"
    assert all(torch.equal(ck["model"][k], v) for k, v in then.items()), "checkpoint weights moved with training"
    print("gated sharded checkpoint holds its step's state")
