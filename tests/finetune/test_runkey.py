"""Run keys hash the resolved configuration, in one place, and the engine records the
planner's key."""

from __future__ import annotations

import pytest

from ftscale.finetune.config import FinetuneConfig
from ftscale.finetune.methods import METHODS
from ftscale.finetune.runkey import resolved_config, run_key


def _key(**over):
    return run_key(
        FinetuneConfig(model="m", task="t", method="lora", **over), data_hash="d", model_id="w"
    )


def test_defaults_given_or_left_out_are_the_same_run():
    lora = METHODS["lora"]
    assert _key() == _key(lr=lora.default_lr) == _key(rank=lora.default_pet_size)
    assert _key() == _key(steps=200)  # the default budget
    assert _key(device="cuda", threads=4, compile=True) == _key()  # how, not what


def test_a_changed_default_is_a_changed_key_without_a_version_bump(monkeypatch):
    before = _key()
    monkeypatch.setattr(type(METHODS["lora"]), "default_lr", 3e-3)
    assert _key() != before
    assert resolved_config(FinetuneConfig(model="m", task="t"))["lr"] == 3e-3


@pytest.mark.parametrize(
    "over", [{"lr": 1e-4}, {"rank": 8}, {"seed": 1}, {"data_size": 10}, {"epochs": 2.0}]
)
def test_every_setting_is_part_of_the_key(over):
    assert _key(**over) != _key()


def test_data_and_model_fingerprints_are_part_of_the_key():
    cfg = FinetuneConfig(model="m", task="t")
    keys = {run_key(cfg, data_hash=d, model_id=w) for d, w in (("d", "w"), ("e", "w"), ("d", "v"))}
    assert len(keys) == 3


def test_the_engine_records_the_planners_key():
    from ftscale.finetune import run_finetune
    from ftscale.study.plan import plan_study
    from ftscale.study.runfn import spec_to_config
    from ftscale.study.spec import parse_study

    training = {"steps": 1, "eval_every": 1, "decode_examples": 0, "zero_shot": False}
    study = parse_study(
        {
            "study": {
                "name": "k",
                "tasks": ["translate-en-de"],
                "factor": "model_size",
                "models": ["ftlm-1", "ftlm-2"],
                "methods": ["prompt"],
                "seeds": 1,
            },
            "data_sizes": {"prompt": [8]},
            "training": {**training, "dev_examples": 4, "test_examples": 4},
        }
    )
    planned = plan_study(study)[0]
    assert planned.spec["model"] == "ftlm-1"
    record = run_finetune(spec_to_config(planned.spec))
    assert record["run_key"] == planned.run_key
