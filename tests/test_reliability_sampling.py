"""Reliability of sampling runs (thinkfast.sampling, thinkfast.generate): one test per defect a probe found.

1. a resume with other settings mixed two runs in one file;
2. a user's file passed as the output was "repaired" (truncated) and appended to; special files were read;
3. two writers on one file both succeeded, and duplicated records were counted twice;
4. a tokenizer without an EOS token never stopped, ignoring the model config's eos_token_id;
5. bad settings (infinite temperature, an empty problem list, a prompt longer than the model) were not refused
   before the model ran.

Each test fails on the code before the fix and runs in seconds on CPU with a tiny random model and problems made
up in place.
"""
import copy
import json
import threading
import time
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

import thinkfast.sampling as S
from thinkfast.generate import char_tokenizer, generate
from thinkfast.records import OutputInUse, SettingsMismatch, exclusive
from thinkfast.students import from_llama

hf_logging.set_verbosity_error()
ROOT = Path(__file__).resolve().parents[1]
TOK = char_tokenizer()
PROBLEMS = [{"id": "p1", "question": "What is 2+3?", "answer": "5"},
            {"id": "p2", "question": "What is 7-4?", "answer": "3"},
            {"id": "p3", "question": "What is 6*2?", "answer": "12"}]
QUICK = dict(top_p=1.0, batch_problems=2, progress=False, warmup=False)


def tiny_model(seed: int = 0):
    "A tiny random hybrid (one attention layer, one Mamba layer) over the character tokenizer, in fp64."
    torch.manual_seed(seed)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(TOK), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                                      max_position_embeddings=256))
    return from_llama(hf, attn_layers=[0], mixer="mambainllama", chunk_size=16).double().eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    "Tiny models gain nothing from threads, and on a busy 2-core machine thread contention slows them 100-fold."
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model(one_thread):
    return tiny_model(0)


def test_resume_with_other_settings_is_refused(model, tmp_path):
    "Defect 1: another model, n, token budget and greedy decoding into the same file are refused, naming each."
    out = tmp_path / "s.jsonl"
    S.sample_problems(model, TOK, PROBLEMS, out, n=2, max_new_tokens=8, temperature=1.0, **QUICK)
    before = out.read_bytes()
    with pytest.raises(SettingsMismatch) as e:
        S.sample_problems(tiny_model(1), TOK, PROBLEMS, out, n=4, max_new_tokens=16, temperature=0.0, **QUICK)
    msg = str(e.value)
    for part in ("n: 2 -> 4", "max_new_tokens: 8 -> 16", "temperature: 1.0 -> 0.0", "weights: "):
        assert part in msg, msg
    assert "pass --overwrite to start afresh" in msg
    assert out.read_bytes() == before                                   # refused before anything was written
    S.sample_problems(tiny_model(1), TOK, PROBLEMS, out, n=4, max_new_tokens=16, temperature=0.0, overwrite=True,
                      model_id="m1", **QUICK)
    assert S.samples_header(out)["settings"]["n"] == 4 and S.samples_header(out)["settings"]["model_id"] == "m1"
    assert sorted((r["problem_id"], r["sample"]) for r in S.read_samples(out)) == \
           [(p["id"], j) for p in PROBLEMS for j in range(4)]


def test_user_and_special_files_are_never_touched(model, tmp_path):
    "Defect 2: a header-less file is refused and left byte for byte; devices and folders are refused up front."
    user = tmp_path / "notes.json"
    user.write_text('{"my": "notes"}')                                  # one line, no trailing newline
    with pytest.raises(ValueError, match="not a thinkfast samples file"):
        S.sample_problems(model, TOK, PROBLEMS, user, n=1, max_new_tokens=4, temperature=1.0, **QUICK)
    assert user.read_text() == '{"my": "notes"}'
    with pytest.raises(ValueError):                                     # --overwrite does not remove it either
        S.sample_problems(model, TOK, PROBLEMS, user, n=1, max_new_tokens=4, temperature=1.0, overwrite=True, **QUICK)
    assert user.read_text() == '{"my": "notes"}'
    for special in ("/dev/null", "/dev/full", tmp_path):
        with pytest.raises(ValueError, match="regular file"):
            S.sample_problems(model, TOK, PROBLEMS, special, n=1, max_new_tokens=4, temperature=1.0, **QUICK)
        with pytest.raises(ValueError, match="regular file"):
            S.read_samples(special)
    legacy = ROOT / "results" / "sampling_gpu_tiny.jsonl"                # committed, written before headers: readable
    assert S.samples_header(legacy) is None and len(S.read_samples(legacy)) == 800


def test_second_writer_is_refused_and_duplicates_detected(model, tmp_path):
    "Defect 3: a run on a file another writer holds fails at once; a duplicated record is an error, not counted twice."
    out = tmp_path / "s.jsonl"
    ready, release = threading.Event(), threading.Event()

    def other_writer():
        with exclusive(out):
            ready.set()
            release.wait(30)

    holder = threading.Thread(target=other_writer)
    holder.start()
    assert ready.wait(30)
    try:
        with pytest.raises(OutputInUse, match="in use by another run"):
            S.sample_problems(model, TOK, PROBLEMS, out, n=2, max_new_tokens=4, temperature=1.0, **QUICK)
    finally:
        release.set()
        holder.join()
    assert not out.exists()
    S.sample_problems(model, TOK, PROBLEMS, out, n=2, max_new_tokens=4, temperature=1.0, **QUICK)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines + lines[1:2]))                         # the first sample record once more
    with pytest.raises(ValueError, match=rf"s\.jsonl:{len(lines) + 1}: sample 0 of problem 'p1' again \(first at line 2\)"):
        S.read_samples(out)


def test_eos_falls_back_on_the_model_config(model):
    "Defect 4: with the tokenizer's EOS token removed, generation stops at the config's eos_token_id."
    no_eos = copy.deepcopy(TOK)
    no_eos.eos_token = None
    assert no_eos.eos_token_id is None
    m = copy.deepcopy(model)
    m.config.eos_token_id = None
    free = generate(m, no_eos, ["What is 2+3?"], max_new_tokens=20)
    toks = free.token_ids[0][0]
    assert free.finish_reasons[0][0] == "length" and len(toks) == 20
    m.config.eos_token_id = toks[3]
    g = generate(m, no_eos, ["What is 2+3?"], max_new_tokens=20)
    assert g.finish_reasons[0][0] == "eos"
    assert g.token_ids[0][0] == toks[:toks.index(toks[3]) + 1]


def test_bad_settings_are_refused_before_any_work(model, tmp_path):
    "Defect 5: an empty problem list, an infinite temperature and a too-long prompt are refused, quickly, writing nothing."
    out = tmp_path / "s.jsonl"
    with pytest.raises(ValueError, match="no problems to sample"):
        S.sample_problems(model, TOK, [], out, **QUICK)
    with pytest.raises(ValueError, match="temperature=inf"):
        S.sample_problems(model, TOK, PROBLEMS, out, temperature=float("inf"), **QUICK)
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        S.sample_problems(model, TOK, PROBLEMS, out, max_new_tokens=0, **QUICK)
    long = {"id": "long", "question": "9" * 200_000, "answer": "9"}     # a 200 KB question
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"problem 'long': its prompt has \d+ tokens.* more than the model's 256"):
        S.sample_problems(model, TOK, PROBLEMS + [long], out, max_new_tokens=8, **QUICK)
    assert time.perf_counter() - t0 < 20
    assert not out.exists()


def test_summary_comes_from_the_file(model, tmp_path):
    "The summary of a run is derived from its file: the recorded settings, never the current call's."
    out = tmp_path / "s.jsonl"
    S.sample_problems(model, TOK, PROBLEMS, out, n=2, max_new_tokens=6, temperature=1.0, **QUICK)
    s = S.samples_summary(out)
    recs = [json.loads(line) for line in out.read_text().splitlines()[1:]]
    assert s["settings"] == S.samples_header(out)["settings"] and s["settings"]["n"] == 2
    assert (s["problems"], s["samples"], s["tokens"], s["complete"]) == (3, 6, sum(r["tokens"] for r in recs), True)
    assert s["coverage@2"] == sum(any(r["correct"] for r in recs if r["problem_id"] == p["id"]) for p in PROBLEMS) / 3
