"""Distillation on two processes (DDP over gloo, CPU; and with the student sharded by FSDP) equals one process
accumulating the same two micro-batches, in every stage (matrix, hidden, kl); a sharded run resumes exactly.

Two processes with one micro-batch each see, at every step, exactly the micro-batches one process sees with
grad_accum=2 (micro-batch k = (step * grad_accum + a) * world + rank), so their loss curves must agree up to the
order of the gradient all-reduce."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parents[1] / "thinkfast" / "data" / "gsm8k" / "train.jsonl"     # shipped with the package


def test_two_processes_match_one_with_accumulation(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM
    from thinkfast.generate import char_tokenizer
    tok = char_tokenizer(); torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8))
    hf.save_pretrained(tmp_path / "teacher"); tok.save_pretrained(tmp_path / "teacher")
    common = ["distill", "--teacher", str(tmp_path / "teacher"), "--data", f"gsm8k:{DATA}", "--limit", "32", "--mixer", "llamba",
              "--stages", "matrix", "hidden", "kl", "--steps", "matrix=3", "hidden=3", "kl=5",
              "--lr", "matrix=1e-3", "hidden=1e-3", "kl=1e-3", "--seq-len", "1024", "--checkpoint-every", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    run = lambda cmd: subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    one = run([sys.executable, "-m", "thinkfast.cli", *common, "--out", "one", "--grad-accum", "2"])
    assert one.returncode == 0, one.stderr[-3000:]
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "thinkfast.cli", *common,
               "--out", "two", "--grad-accum", "1"])
    assert two.returncode == 0, two.stderr[-3000:]
    fsdp = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "thinkfast.cli", *common,
                "--out", "fsdp", "--grad-accum", "1", "--fsdp"])
    assert fsdp.returncode == 0, fsdp.stderr[-3000:]
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["processes"] == 2
    assert json.loads((tmp_path / "fsdp" / "metrics.json").read_text())["fsdp"] is True
    for stage, steps in (("matrix", 3), ("hidden", 3), ("kl", 5)):     # matrix and hidden reach into the student's layers
        losses = {d: [json.loads(l)["loss"] for l in (tmp_path / d / stage / "metrics.jsonl").read_text().splitlines()]
                  for d in ("one", "two", "fsdp")}
        assert len(losses["one"]) == steps
        assert losses["one"] == pytest.approx(losses["two"], rel=1e-5), (stage, losses)
        assert losses["one"] == pytest.approx(losses["fsdp"], rel=1e-5), (stage, losses)
    # the sharded run saves an ordinary (unsharded) student, with the weights the unsharded runs reach
    from thinkfast.students import ThinkfastForCausalLM
    a, b = (ThinkfastForCausalLM.from_pretrained(tmp_path / d / "student").state_dict() for d in ("two", "fsdp"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


SCRIPT = Path(__file__).with_name("fsdp_stage.py")


def _torchrun(tmp_path, *args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(SCRIPT.parents[1])}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(SCRIPT), *map(str, args)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("stage", ["kl", "matrix"])   # matrix: some trained mixer parameters never get a gradient
def test_sharded_run_resumes_exactly(tmp_path, stage):
    "A sharded (FSDP) run stopped at step 3 and started again gives the uninterrupted run's losses and weights exactly."
    full = _torchrun(tmp_path, tmp_path / "full", DATA, stage)
    assert full.returncode == 0, full.stderr[-3000:]
    cut = _torchrun(tmp_path, tmp_path / "cut", DATA, stage, 3)
    assert cut.returncode != 0 and "simulated failure at step 3" in cut.stderr, cut.stderr[-3000:]
    ck = torch.load(tmp_path / "cut" / stage / "checkpoint" / "state.pt", weights_only=False)
    assert ck["step"] == 2 and ck["sharded"] is True
    assert ck["optimizer"]["state"] and all(isinstance(k, str) for k in ck["optimizer"]["state"])  # gathered, keyed by name
    again = _torchrun(tmp_path, tmp_path / "cut", DATA, stage)
    assert again.returncode == 0, again.stderr[-3000:]
    losses = {d: [json.loads(l)["loss"] for l in (tmp_path / d / stage / "metrics.jsonl").read_text().splitlines()] for d in ("full", "cut")}
    assert len(losses["full"]) == 6 and losses["full"] == losses["cut"], losses
    a, b = (torch.load(tmp_path / d / stage / "final.pt") for d in ("full", "cut"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "cut" / stage / "checkpoint").exists()          # a finished stage keeps final.pt only


def test_sharded_background_checkpoint_holds_its_step(tmp_path):
    "A sharded checkpoint whose write is held back while training goes on still holds its step's weights and AdamW state."
    r = _torchrun(tmp_path, tmp_path / "gated", DATA, "gated")
    assert r.returncode == 0 and "holds its step's state" in r.stdout, (r.stdout[-2000:], r.stderr[-3000:])


def test_fsdp_needs_launched_processes(tmp_path):
    "fsdp=True in a plain process (no torchrun) is refused with an error that says how to start it."
    from thinkfast import distill as D
    data = {"input_ids": torch.zeros(2, 8, dtype=torch.long)}
    with pytest.raises(ValueError, match="torchrun"):
        D.train_stage(None, None, data, D.Stage("kl"), tmp_path, fsdp=True)
