"""Kernel choices are library settings (ssd.use_reference, layers.set_kernel_options), read from the environment only
by the command line (cli.kernel_settings); the engine keys its captured decoders on them."""
import ast
from pathlib import Path

import pytest
import torch

from thinkfast import layers, ssd
from thinkfast.cli import apply_kernel_settings, kernel_settings, main
from thinkfast.generate import Engine
from thinkfast.students import ThinkfastConfig, ThinkfastForCausalLM

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore():
    "Whatever a test sets, the next one starts from the library's choices as they were."
    before = dict(reference_ops=sorted(ssd.reference_ops()), **layers.kernel_options())
    yield
    apply_kernel_settings(before)


@pytest.mark.parametrize("module", ["layers", "ssd", "generate"])
def test_no_environment_lookups_in_core_modules(module):
    tree = ast.parse((ROOT / "thinkfast" / f"{module}.py").read_text())
    env = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")]
    assert not env, f"thinkfast/{module}.py reads the environment at lines {env}"


def test_settings_from_the_environment(restore):
    s = kernel_settings({"THINKFAST_REFERENCE": "ssd_update, ssd_scan", "THINKFAST_COMPILE": "0"})
    assert s == dict(reference_ops=["ssd_scan", "ssd_update"], compile=False, decode_kernel=True, mamba_step=True)
    assert apply_kernel_settings(s) == s
    assert ssd.reference_ops() == {"ssd_scan", "ssd_update"} and layers.kernel_options()["compile"] is False
    assert kernel_settings({}) == dict(reference_ops=[], compile=True, decode_kernel=True, mamba_step=True)
    assert kernel_settings({"THINKFAST_MAMBA_STEP": "0"})["mamba_step"] is False


def test_bad_choices_are_refused_before_anything_changes(restore):
    apply_kernel_settings(dict(reference_ops=["ssd_scan"]))
    with pytest.raises(ValueError, match="THINKFAST_REFERENCE: reference operation 'scan' unknown; allowed: ssd_scan"):
        apply_kernel_settings(kernel_settings({"THINKFAST_REFERENCE": "scan"}))
    assert ssd.reference_ops() == {"ssd_scan"}
    with pytest.raises(ValueError, match="kernel setting 'compiled' unknown"):
        apply_kernel_settings(dict(compiled=True))
    with pytest.raises(ValueError, match="compile=1; allowed: True, False or None"):
        layers.set_kernel_options(compile=1)


def test_command_line_names_a_bad_environment_value(monkeypatch, capsys, tmp_path, restore):
    monkeypatch.setenv("THINKFAST_REFERENCE", "ssd_scn")
    with pytest.raises(SystemExit):
        main(["reproduce", "--preset", "tiny", "--out", str(tmp_path / "run")])
    assert "THINKFAST_REFERENCE: reference operation 'ssd_scn' unknown" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()                                  # refused before any work


def test_engine_keeps_a_decoder_per_kernel_choice(restore):
    torch.manual_seed(0)
    cfg = ThinkfastConfig(vocab_size=20, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, head_dim=4, layer_mixers=["attention", "llamba"])
    eng = Engine(ThinkfastForCausalLM(cfg).eval(), keep=4)
    d1 = eng.decoder(2, 16)
    ssd.use_reference(["ssd_update"])
    d2 = eng.decoder(2, 16)
    layers.set_kernel_options(compile=False)
    d3 = eng.decoder(2, 16)
    assert len({id(d1), id(d2), id(d3)}) == 3 and eng.decoder(2, 16) is d3
