"""Broken or unsuitable model folders are one-line errors (issue 17, defect 8)."""

import json
import shutil

import pytest

from ftscale.errors import UserError
from ftscale.models.registry import load_model, model_info

LLAMA = {
    "model_type": "llama",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "intermediate_size": 32,
    "num_attention_heads": 2,
    "vocab_size": 64,
    "architectures": ["LlamaForCausalLM"],
}


def folder(tmp_path, name, config):
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return d


def test_a_config_with_a_negative_size(tmp_path):
    for bad in (
        {"hidden_size": -5},
        {"num_attention_heads": 1, "hidden_size": -4},
        {"vocab_size": -3},
    ):
        d = folder(tmp_path, f"neg{len(list(tmp_path.iterdir()))}", {**LLAMA, **bad})
        with pytest.raises(UserError):
            model_info(str(d))


@pytest.mark.parametrize(
    "config",
    [
        {**LLAMA, "model_type": "bert", "architectures": ["BertForMaskedLM"]},
        {**LLAMA, "architectures": ["LlamaForSequenceClassification"]},
        {
            **LLAMA,
            "model_type": "t5",
            "architectures": ["T5ForConditionalGeneration"],
            "is_encoder_decoder": True,
        },
    ],
)
def test_models_that_are_not_causal_lms_are_refused(tmp_path, config):
    d = folder(tmp_path, "enc", config)
    with pytest.raises(UserError, match="causal"):
        model_info(str(d))
    with pytest.raises(UserError):
        load_model(str(d))


def test_a_causal_config_is_described(tmp_path):
    info = model_info(str(folder(tmp_path, "ok", LLAMA)))
    assert info.model_size > 0 and info.details["architecture"] == "LlamaForCausalLM"


@pytest.mark.parametrize("meta", ["[]", '"x"', "3"])
def test_checkpoint_metadata_that_is_not_an_object(tmp_path, meta):
    from ftscale.models.registry import _resolve

    _, loc, _ = _resolve("ftlm-1")
    d = tmp_path / "ftlm-x"
    shutil.copytree(loc, d)
    (d / "ftscale_meta.json").write_text(meta)
    with pytest.raises(UserError, match="JSON object"):
        model_info(str(d))


@pytest.mark.parametrize("name", ["tpu", "cudaXYZ", "cuda:0", "meta", "cuda:-1"])
def test_devices_are_checked_before_any_work(tmp_path, name):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftscale",
            "pretrain",
            "--family",
            "default",
            "--out",
            str(tmp_path / "fam"),
            "--device",
            name,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("ftscale: error:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "fam").exists()
