"""End-to-end runs on the smallest member of the shipped model family and a real task."""

import pytest

from ftscale.finetune import run_finetune


def _smallest_family_member() -> str:
    from ftscale.models import list_models

    family = [m for m in list_models() if m.family and "@" not in m.name]
    assert family, "the model family is not installed (ftscale/models/family)"
    return min(family, key=lambda m: m.model_size).name


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fmt", "lora", "prompt"])
def test_each_method_reduces_dev_loss_on_the_smallest_family_model(method):
    rec = run_finetune(
        dict(
            model=_smallest_family_member(),
            task="translate-en-de",
            method=method,
            data_size=256,
            steps=30,
            eval_every=10,
            patience=0,
            dev_examples=48,
            test_examples=48,
            decode_examples=8,
        )
    )
    assert rec["status"] == "done"
    assert rec["loss"] < rec["zero_shot_loss"]
    assert rec["bleu"] is not None and "tok:13a" in rec["bleu_signature"]
    assert rec["model_size"] > 0 and rec["pretrain_tokens"] is not None


@pytest.mark.slow
def test_cli_json_run_on_the_family_and_chinese_metrics():
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "finetune", "--model", _smallest_family_member(),
         "--method", "lora", "--task", "translate-en-zh", "--data-size", "64", "--steps", "4",
         "--eval-every", "2", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-500:]
    rec = json.loads(proc.stdout)
    assert rec["status"] == "done" and "tok:zh" in rec["bleu_signature"]
    assert rec["tokens_per_second"] > 0 and rec["trainable_params"] > 0
