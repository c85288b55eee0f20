"""Study files checked fully before anything runs (issue 17, defects 2, 3, 11)."""

import pytest

from ftscale.errors import UserError
from ftscale.study.check import check_study_resources
from ftscale.study.spec import parse_study


def study(**over):
    data = {
        "study": {
            "name": "s",
            "tasks": ["translate-en-de"],
            "factor": "model_size",
            "models": ["ftlm-1", "ftlm-2"],
            "methods": ["fmt"],
            "seeds": 1,
        },
        "data_sizes": {"fmt": [10, 20]},
        "training": {"steps": 2},
    }
    for path, value in over.items():
        table, key = path.split(".")
        data.setdefault(table, {})[key] = value
    return data


@pytest.mark.parametrize(
    "over, msg",
    [
        ({"study.seeds": 2**40}, "study.seeds"),
        ({"study.seeds": [2**40]}, "study.seeds"),
        ({"fit.seed": "abc"}, "fit.seed"),
        ({"fit.seed": 1.7}, "fit.seed"),
        ({"fit.seed": -1}, "fit.seed"),
        ({"transfer.shots": "abc"}, "transfer.shots"),
        ({"transfer.shots": 5}, "transfer.shots"),
        ({"transfer.enabled": "no"}, "transfer.enabled"),
        ({"transfer.sample": -4}, "transfer.sample"),
        ({"transfer.decode": 99}, "cannot exceed"),
        ({"training.steps": 4.5}, "steps must be an integer"),
        ({"training.weight_decay": -50}, "weight decay"),
        ({"training.device": "cudaXYZ"}, "unknown device"),
        ({"training.grad_clip": float("nan")}, "grad clip"),
        ({"training.min_lr_ratio": -3}, "min lr ratio"),
        ({"training.lr": "fast"}, "learning rate"),
        ({"training.lr": [1e-3, -1.0]}, "learning rate"),
        ({"training.lr": []}, "1 to 16 rates"),
        ({"training.schedule": "step"}, "unknown schedule"),
        ({"training.lr_search": "bayes"}, "unknown lr search"),
    ],
)
def test_the_file_itself(over, msg):
    with pytest.raises(UserError, match=msg):
        parse_study(study(**over))


@pytest.mark.parametrize("lr", ["auto", [1e-3, 3e-3], 1e-3])
def test_a_rate_a_list_or_auto_is_a_valid_study_setting(lr):
    s = parse_study(study(**{"training.lr": lr, "training.schedule": "wsd"}))
    assert s.training_for("fmt")["lr"] == lr


@pytest.mark.parametrize(
    "over, msg",
    [
        ({"study.models": ["ftlm-1", "ftlm-9"]}, "study.models"),
        ({"study.models": ["ftlm-1", "ftlm-1@"]}, "study.models"),
        ({"study.tasks": ["translate-fr-de"]}, "no train split"),
        ({"study.tasks": ["no-such-task"]}, "study.tasks"),
        ({"data_sizes.fmt": [10, 99999]}, "exceed the"),
        ({"study.models": ["ftlm-4@524k", "ftlm-4"]}, "model_size does not vary"),
        (
            {"study.factor": "pretrain_tokens", "study.models": ["ftlm-1", "ftlm-2"]},
            "pretrain_tokens does not vary",
        ),
    ],
)
def test_the_file_against_data_and_models(monkeypatch, over, msg):
    monkeypatch.delenv("FTSCALE_RUN_FN", raising=False)
    with pytest.raises(UserError, match=msg):
        check_study_resources(parse_study(study(**over)))


def test_a_good_study_passes(monkeypatch):
    monkeypatch.delenv("FTSCALE_RUN_FN", raising=False)
    check_study_resources(parse_study(study()))
    check_study_resources(
        parse_study(
            study(**{"study.factor": "pretrain_tokens", "study.models": ["ftlm-4@524k", "ftlm-4"]})
        )
    )
