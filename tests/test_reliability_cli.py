"""Reliability of the `thinkfast` command and the reproduction run folder: one test per defect a probe found.

1. `reproduce` rerun into a folder with another `teacher_steps` reused the old teacher and wrote the new number
   into results.json; an earlier version's run folder (no settings record) was resumed blindly;
4. two runs on one reproduction folder both started;
5. `--param` values of the wrong type or range failed inside the notebook after the teacher (and sometimes all
   sampling) ran; bad JSON silently became a string;
9. results files were written mode 0600 (mkstemp, then rename);
10. late and ugly errors: `sample` printed ValueErrors as tracebacks, checked its settings after the model loaded,
    accepted `--temperature inf`, ignored `--split` for MATH-500, failed after loading on a read-only output, gave a
    bare UnicodeDecodeError for non-UTF-8 data, a tokenizer message for a folder that holds no model, `OSError: [Errno
    22]` with no path for a truncated checkpoint, exited 0 on an empty dataset.

Items 2, 3, 6, 7 and 8 are in test_reliability_distill.py, test_reliability_sampling.py and
test_reliability_scoring.py. Each test runs on a CPU in seconds; the model is a tiny random one built in place.
"""
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.utils import logging as hf_logging

from thinkfast.cli import main
from thinkfast.generate import char_tokenizer
from thinkfast.records import exclusive
from thinkfast.reproduce import PRESETS, check_run_folder, resolve
from thinkfast.students import from_llama

hf_logging.set_verbosity_error()
ROOT = Path(__file__).resolve().parents[1]
PROBLEM = {"question": "Tom has 2 apples and buys 3 more. How many apples does he have?",
           "answer": "He has 2 + 3 = 5.\n#### 5"}


def refused(argv, capsys) -> str:
    "The one-line error `thinkfast ARGV` stops with (exit status 2, the subcommand's usage, no traceback)."
    with pytest.raises(SystemExit) as e: main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert err.startswith(f"usage: thinkfast {argv[0]}") and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    "A tiny random hybrid saved with the character tokenizer."
    d = tmp_path_factory.mktemp("model")
    tok = char_tokenizer()
    torch.manual_seed(0)
    hf = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512))
    from_llama(hf, attn_layers=[1], mixer="mambainllama").save_pretrained(d)
    tok.save_pretrained(d)
    return d


@pytest.fixture
def data(tmp_path):
    p = tmp_path / "gsm8k.jsonl"
    p.write_text("".join(json.dumps(PROBLEM) + "\n" for _ in range(3)), encoding="utf-8")
    return p


def sample_argv(model_dir, data, out, *extra):
    return ["sample", "--model", str(model_dir), "--data", str(data), "--n", "1", "--max-new-tokens", "4",
            "--dtype", "float32", "--device", "cpu", "--out", str(out), *extra]


# 1: settings of a reproduction folder
def test_reproduce_with_other_settings_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "rep"
    cfg = resolve("tiny")
    check_run_folder(run, dict(preset="tiny", **cfg), "start afresh")          # what a first run records
    msg = refused(["reproduce", "--out", str(run), "--param", "teacher_steps=5"], capsys)
    assert f"teacher_steps: {cfg['teacher_steps']} -> 5" in msg and "--overwrite" in msg, msg
    assert not (run / "reproduce.ipynb").exists()                              # refused before the notebook started


def test_reproduce_folder_without_settings_record_is_refused(tmp_path, capsys):
    run = tmp_path / "old"
    (run / "teacher").mkdir(parents=True)                                      # an earlier version's run
    msg = refused(["reproduce", "--out", str(run)], capsys)
    assert "without a settings record" in msg and "--overwrite" in msg, msg


# 4: one run per reproduction folder
def test_second_reproduction_in_one_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "busy"
    run.mkdir()
    with exclusive(run):
        msg = refused(["reproduce", "--out", str(run)], capsys)
    assert "in use by another run" in msg and f"process {os.getpid()}" in msg, msg


# 5: --param values checked before any work
@pytest.mark.parametrize("param, needle", [
    ("n_budgets=1", "n_budgets=1; allowed: an int >= 2"),
    ("n_samples=true", "n_samples=true; allowed: an int >= 1"),
    ("teacher_steps=ten", 'teacher_steps="ten"'),
    ('distill_steps={"kl": 5', "distill_steps="),
    ("top_p=0", "top_p=0"),
    ("hybrid_attn_layers=[9]", "layer 9 >= n_layers"),
])
def test_bad_param_refused_before_any_work(tmp_path, capsys, param, needle):
    msg = refused(["reproduce", "--out", str(tmp_path / "r"), "--param", param], capsys)
    assert needle in msg, msg
    assert not (tmp_path / "r" / "reproduce.ipynb").exists() and not (tmp_path / "r" / "settings.json").exists()


def test_every_preset_setting_has_a_rule():
    from thinkfast.reproduce import SETTING_RULES, check_settings_values
    for name, cfg in PRESETS.items():
        assert set(cfg) <= set(SETTING_RULES), (name, set(cfg) - set(SETTING_RULES))
        assert check_settings_values(dict(cfg)) == cfg                         # every preset passes its own checks


# 9: results files readable like the rest
def test_results_files_have_the_usual_mode(model_dir, data, tmp_path, capsys):
    assert main(sample_argv(model_dir, data, tmp_path / "s.jsonl")) == 0
    capsys.readouterr()
    mask = os.umask(0)
    os.umask(mask)
    for f in (tmp_path / "s.summary.json", tmp_path / "s.jsonl"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~mask, (f, oct(f.stat().st_mode))


# 10: early, one-line errors
def test_sample_values_refused_by_the_parser(model_dir, data, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert "allowed: a finite number >= 0" in refused(sample_argv(model_dir, data, out, "--temperature", "inf"), capsys)
    assert "allowed: a finite number > 0 and <= 1" in refused(sample_argv(model_dir, data, out, "--top-p", "0"), capsys)
    assert "allowed: an int >= 1" in refused(sample_argv(model_dir, data, out, "--n", "0"), capsys)
    msg = refused(sample_argv(model_dir, "math500", out, "--split", "train"), capsys)
    assert "MATH-500 has only a test split" in msg, msg
    msg = refused(sample_argv(model_dir, "hub:squad", out), capsys)           # one --data spelling: named sets, hub:NAME or a path
    assert "the hub sets read here are" in msg, msg
    assert not out.exists()


def test_sample_bad_files_refused_before_the_model_loads(model_dir, data, tmp_path, capsys):
    out = tmp_path / "s.jsonl"
    assert "no such file" in refused(sample_argv(model_dir, tmp_path / "missing.jsonl", out), capsys)
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(json.dumps(PROBLEM).encode() + b"\n" + b'{"question": "caf\xe9", "answer": "#### 1"}\n')
    assert f"{bad}:2: not UTF-8" in refused(sample_argv(model_dir, bad, out), capsys)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert "holds no problems" in refused(sample_argv(model_dir, empty, out), capsys)
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    assert "without config.json" in refused(sample_argv(folder, data, out), capsys)
    assert "no such folder" in refused(sample_argv(tmp_path / "no" / "such" / "model", data, out), capsys)
    assert "is a device" in refused(sample_argv(model_dir, data, "/dev/full"), capsys)
    assert "cannot write there" in refused(sample_argv(model_dir, data, "/proc/thinkfast/s.jsonl"), capsys)
    assert not out.exists()


def test_truncated_checkpoint_names_the_model(model_dir, data, tmp_path, capsys):
    import shutil
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    w = broken / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    msg = refused(sample_argv(broken, data, tmp_path / "s.jsonl"), capsys)
    assert f"--model {broken}: could not be loaded" in msg, msg


def test_sample_resume_with_other_settings_refused_before_the_model_loads(model_dir, data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "s.jsonl"
    assert main(sample_argv(model_dir, data, out)) == 0
    capsys.readouterr()
    import thinkfast.cli as cli
    monkeypatch.setattr(cli, "load_for_sampling", lambda *a, **k: pytest.fail("the model was loaded"))
    msg = refused(sample_argv(model_dir, data, out, "--n", "2", "--temperature", "0"), capsys)
    assert "n: 1 -> 2" in msg and "temperature: 0.7 -> 0.0" in msg and "--overwrite" in msg, msg


def test_errors_print_no_traceback(tmp_path):
    "The installed command: a missing data file ends in one line and status 2, not a Python traceback."
    r = subprocess.run([sys.executable, "-m", "thinkfast.cli", "sample", "--model", str(tmp_path / "nothing" / "here" / "m"),
                        "--data", str(tmp_path / "missing.jsonl")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("thinkfast sample: error: "), r.stderr
