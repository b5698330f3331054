"""Reliability of distillation runs (thinkfast.distill), one test per defect a probe found: a planted checkpoint ran
code on resume (1); a resume with other settings reused the old output (2); two runs on one folder both wrote it (3);
a step that left the weights non-finite was saved as the stage's result (4); a mixer stage for a student without
mixers failed deep inside the optimizer (5). Tiny random models and data built in place; CPU, seconds each."""
import json
import os
import random
import re
from dataclasses import replace

import pytest
import torch

from thinkfast import distill as D
from thinkfast import records


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    "One torch thread for these tiny models (several threads only contend on a small, busy CI machine); restored after."
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny():
    "A 2-layer random Llama (vocabulary 40) as teacher, and 8 random documents packed into rows of 64 tokens."
    from transformers import LlamaConfig, LlamaForCausalLM
    from thinkfast.students import from_llama
    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8))
    teacher = from_llama(hf, attn_layers=range(2)).eval()
    g = torch.Generator().manual_seed(0)
    docs = [torch.randint(1, 40, (30,), generator=g).tolist() for _ in range(8)]
    data = D.pack([(ids, [-100] * 10 + ids[10:]) for ids in docs], 64)
    return hf, teacher, data


def student(hf, attn=()):
    "A Llamba student of the tiny teacher, attention kept in the layers `attn` (the new mixers seeded alike)."
    from thinkfast.students import from_llama
    torch.manual_seed(0)
    return from_llama(hf, attn_layers=list(attn), mixer="llamba")


class Planted:
    "An object whose unpickling creates a folder: a stand-in for any code a planted pickle could run."
    def __init__(self, marker): self.marker = marker

    def __reduce__(self): return (os.mkdir, (str(self.marker),))


def test_planted_checkpoint_is_refused_not_run(tiny, tmp_path):
    "(1) A checkpoint replaced by a code-running pickle: the resume refuses it, naming the file; the code never runs."
    hf, teacher, data = tiny
    st = D.Stage("kl", steps=3, lr=1e-3, checkpoint_every=1)
    with pytest.raises(RuntimeError, match="simulated failure"):
        D.train_stage(student(hf), teacher, data, st, tmp_path, progress=False, fail_at=2)
    state = D.latest_checkpoint(tmp_path / "kl") / "state.pt"
    marker = tmp_path / "ran"
    torch.save({"model": Planted(marker), "optimizer": {}, "step": 2, "rng": {}}, state)
    with pytest.raises(ValueError, match=re.escape(str(state))):
        D.train_stage(student(hf), teacher, data, st, tmp_path, progress=False)
    assert not marker.exists()
    final = tmp_path / "planted-final" / "kl" / "final.pt"             # a finished stage's weights: the same
    D.train_stage(student(hf), teacher, data, replace(st, steps=1), tmp_path / "planted-final", progress=False)
    torch.save({"w": Planted(marker)}, final)
    with pytest.raises(ValueError, match=re.escape(str(final))):
        D.train_stage(student(hf), teacher, data, replace(st, steps=1), tmp_path / "planted-final", progress=False)
    assert not marker.exists()


def test_checkpoint_rng_states_load_weights_only_and_restore_exactly():
    "(1) The RNG states a checkpoint holds load with weights_only=True and restore Python's, numpy's and torch's draws."
    import io
    import numpy as np
    random.seed(1); np.random.seed(2); torch.manual_seed(3)
    np.random.randn()                                       # numpy's cached gaussian in the state too
    buf = io.BytesIO()
    torch.save({"rng": D._rng_state()}, buf)
    want = (random.random(), np.random.randn(3).tolist(), torch.rand(3))
    buf.seek(0)
    D._set_rng_state(torch.load(buf, weights_only=True)["rng"])
    got = (random.random(), np.random.randn(3).tolist(), torch.rand(3))
    assert got[0] == want[0] and got[1] == want[1] and torch.equal(got[2], want[2])


def test_resume_after_a_kill_stays_exact(tiny, tmp_path):
    "(1) With weights-only checkpoints a run killed and resumed still gives the uninterrupted run's losses and weights."
    hf, teacher, data = tiny
    st = D.Stage("kl", steps=5, lr=3e-3, warmup=1, grad_accum=2, checkpoint_every=2)
    whole = student(hf)
    full = D.train_stage(whole, teacher, data, st, tmp_path / "a", progress=False)
    cut = student(hf)
    with pytest.raises(RuntimeError, match="simulated failure"):
        D.train_stage(cut, teacher, data, st, tmp_path / "b", progress=False, fail_at=3)
    cut = student(hf)
    again = D.train_stage(cut, teacher, data, st, tmp_path / "b", progress=False)
    assert [m["loss"] for m in full] == [m["loss"] for m in again]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), cut.state_dict().values()))


def test_resume_with_other_settings_is_refused(tiny, tmp_path):
    "(2) A rerun with more steps and another lr is refused before training, naming both; overwrite starts afresh."
    hf, teacher, data = tiny
    st = D.Stage("kl", steps=2, lr=1e-3)
    D.distill(student(hf), teacher, data, [st], tmp_path, progress=False)
    final = (tmp_path / "kl" / "final.pt").read_bytes()
    metrics = (tmp_path / "kl" / "metrics.jsonl").read_text()
    with pytest.raises(records.SettingsMismatch) as e:
        D.distill(student(hf), teacher, data, [replace(st, steps=3, lr=2e-3)], tmp_path, progress=False)
    assert "steps: 2 -> 3" in str(e.value) and "lr: 0.001 -> 0.002" in str(e.value) and "--overwrite" in str(e.value)
    assert (tmp_path / "kl" / "final.pt").read_bytes() == final
    assert (tmp_path / "kl" / "metrics.jsonl").read_text() == metrics
    with pytest.raises(records.SettingsMismatch, match="student.attn_layers"):       # another student
        D.distill(student(hf, attn=[0]), teacher, data, [st], tmp_path, progress=False)
    other_data = {**data, "input_ids": data["input_ids"].flip(0)}
    with pytest.raises(records.SettingsMismatch, match="data.sample_sha256"):         # other data
        D.distill(student(hf), teacher, other_data, [st], tmp_path, progress=False)
    with pytest.raises(records.SettingsMismatch, match="source"):                    # the caller's own settings
        D.distill(student(hf), teacher, data, [st], tmp_path, progress=False, settings={"source": "other"})
    assert (tmp_path / "kl" / "final.pt").read_bytes() == final
    m = D.distill(student(hf), teacher, data, [replace(st, steps=3, lr=2e-3)], tmp_path, progress=False, overwrite=True)
    assert len(m["kl"]) == 3 and json.loads((tmp_path / "kl" / "settings.json").read_text())["steps"] == 3
    # train_stage on its own (the reproduction's teacher) records and checks its stage the same way
    sft = replace(st, name="teacher", kl_weight=0.0, ce_weight=1.0)
    D.train_stage(student(hf), None, data, sft, tmp_path / "t", progress=False)
    with pytest.raises(records.SettingsMismatch, match="steps: 2 -> 4"):
        D.train_stage(student(hf), None, data, replace(sft, steps=4), tmp_path / "t", progress=False)
    ms = D.train_stage(student(hf), None, data, replace(sft, steps=4), tmp_path / "t", progress=False, overwrite=True)
    assert len(ms) == 4


def test_second_run_on_a_folder_in_use_is_refused(tiny, tmp_path):
    "(3) While another run holds the folder, distill and train_stage stop with OutputInUse and write nothing."
    hf, teacher, data = tiny
    st = D.Stage("kl", steps=2, lr=1e-3)
    out = tmp_path / "run"
    out.mkdir()
    with records.exclusive(out):
        with pytest.raises(records.OutputInUse):
            D.distill(student(hf), teacher, data, [st], out, progress=False)
        with pytest.raises(records.OutputInUse):
            D.train_stage(student(hf), teacher, data, st, out, progress=False)
    assert not (out / "kl").exists()
    D.distill(student(hf), teacher, data, [st], out, progress=False)            # free again: it runs, once
    assert len((out / "kl" / "metrics.jsonl").read_text().splitlines()) == 2 and not (out / ".lock").exists()


class Blowup(D.Stage):
    "A stage whose learning rate is infinite at its last step: the weights break while the loss before them is finite."
    def lr_at(self, step): return float("inf") if step == self.steps - 1 else super().lr_at(step)


def test_nonfinite_weights_stop_the_stage_before_final(tiny, tmp_path):
    "(4) An infinite lr is refused up front; weights broken at the last step stop the stage before final.pt."
    hf, teacher, data = tiny
    for bad in (float("inf"), float("nan"), 0.0, -1e-3):
        with pytest.raises(ValueError, match=f"'hidden'.*lr={bad}"):
            D.Stage("hidden", "hidden", "mixers", lr=bad)
    st = Blowup("hidden", "hidden", "mixers", steps=3, lr=1e-3, checkpoint_every=2)
    with pytest.raises(FloatingPointError) as e:
        D.distill(student(hf), teacher, data, [st], tmp_path, progress=False)
    msg = str(e.value)
    assert "stage 'hidden'" in msg and "step 2" in msg and "parameter 'model.layers." in msg, msg
    assert "last good checkpoint" in msg, msg
    d = tmp_path / "hidden"
    assert not (d / "final.pt").exists()
    ck = D.load_state(D.latest_checkpoint(d) / "state.pt")
    assert ck["step"] == 2 and records.nonfinite(ck["model"].items()) is None
    lines = (d / "metrics.jsonl").read_text()
    assert [json.loads(l)["step"] for l in lines.splitlines()] == [0, 1]
    assert "Infinity" not in lines and "NaN" not in lines


def test_stage_schedule_is_settable_and_checked():
    "(4) Every schedule knob is a field `replace` overrides, checked like the constructor's; warmup may exceed steps."
    kl = replace(D.STAGES["kl"], warmup=3, min_lr_ratio=0.0, steps=10)
    assert kl.lr_at(2) == kl.lr and kl.lr_at(9) == 0.0
    short = replace(D.STAGES["kl"], steps=5)                  # the recipe's 100 warm-up steps: all on the ramp
    assert short.lr_at(4) == short.lr * 5 / 100
    for kw, needle in [(dict(warmup=-1), "warmup=-1"), (dict(warmup=1.5), "warmup=1.5"),
                       (dict(min_lr_ratio=2.0), "min_lr_ratio=2.0"), (dict(steps=0), "steps=0"),
                       (dict(weight_decay=float("inf")), "weight_decay=inf")]:
        with pytest.raises(ValueError, match=re.escape(f"Stage 'kl': {needle}")):
            replace(D.STAGES["kl"], **kw)


def test_all_attention_student_is_refused_for_mixer_stages(tiny, tmp_path):
    "(5) Stages that train or compare converted mixers, for a student with none, are refused before any training."
    hf, teacher, data = tiny
    everything = student(hf, attn=range(2))
    first = D.Stage("kl", steps=1, lr=1e-3)
    for st in (D.Stage("matrix", "matrix", "mixers", steps=1), D.Stage("hidden", "hidden", "mixers", steps=1),
               D.Stage("mixers-kl", "kl", "mixers", steps=1)):
        with pytest.raises(ValueError, match=f"stage '{st.name}'.*every layer is attention.*drop the stage"):
            D.distill(everything, teacher, data, [first, st], tmp_path / "d", progress=False)
        with pytest.raises(ValueError, match="every layer is attention"):
            D.train_stage(everything, teacher, data, st, tmp_path / "t", progress=False)
    assert not (tmp_path / "d").exists() and not (tmp_path / "t").exists()
