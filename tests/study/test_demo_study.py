"""The demo study's protocol (docs/study.md, "The demo's protocol") and the budget keys in studies."""

import copy
import re

import pytest

from ftscale.demo import demo_study_path
from ftscale.errors import UserError
from ftscale.finetune.config import FinetuneConfig, budget_steps
from ftscale.study.spec import load_study, parse_study
from ftscale.testing.simulated import simulated_study


def _with(mutate):
    d = copy.deepcopy(simulated_study())
    mutate(d)
    return d


def test_study_accepts_an_epoch_budget_with_clamps():
    def mutate(d):
        d["training"] = {"epochs": 4, "min_steps": 32, "max_steps": 400, "fmt": {"epochs": 3}}

    study = parse_study(_with(mutate))
    assert study.training_for("fmt") == {"epochs": 3, "min_steps": 32, "max_steps": 400}
    assert study.training_for("lora")["epochs"] == 4


@pytest.mark.parametrize(
    ("training", "where"),
    [
        ({"steps": 10, "min_steps": 32}, "training (fmt)"),
        ({"epochs": 4, "min_steps": 64, "max_steps": 32}, "training (fmt)"),
        ({"epochs": 4, "lora": {"max_steps": 0}}, "training (lora)"),
        ({"epochs": 4, "min_steps": "few"}, "training.min_steps"),
    ],
)
def test_study_rejects_bad_clamps(training, where):
    with pytest.raises(UserError, match=re.escape(where)):
        parse_study(_with(lambda d: d.update(training=training)))


def test_demo_follows_the_miniature_guidance():
    study = load_study(demo_study_path())
    assert len(study.models) >= 4 and len(study.seeds) >= 2
    assert {"model_size", "data_size"} <= set(study.fit.holdout_largest)
    sizes = study.data_sizes
    for method in study.methods:
        assert len(sizes[method]) >= 4
        assert max(sizes[method]) / min(sizes[method]) >= 32  # >= 1.5 orders of magnitude
    for pet in ("lora", "prompt"):
        assert min(sizes[pet]) < min(sizes["fmt"])  # PET's range starts lower, as in the paper


def test_demo_budget_trains_every_size_for_epochs():
    """Each size gets an epoch budget (not a fixed step count), so the largest subset is seen
    several times and the smallest still gets enough steps to reach its best dev loss."""
    study = load_study(demo_study_path())
    for method in study.methods:
        training = study.training_for(method)
        assert "steps" not in training and training["epochs"] >= 3
        assert training["patience"] > 0 and training["eval_every"] > 0
        budgets = {}
        for size in study.data_sizes[method]:
            cfg = FinetuneConfig(
                model=study.models[0],
                task=study.tasks[0],
                method=method,
                data_size=size,
                **training,
            )
            budgets[size] = budget_steps(cfg)
        largest = max(budgets)
        assert budgets[largest] * training["batch_size"] >= 3 * largest  # >= 3 epochs
        assert min(budgets.values()) >= 3 * training["eval_every"]  # room to stop early


def _demo_result(**fields):
    """A demo result as ``run_demo`` returns it, for ``format_demo``: no fits, crossings or
    recommendation unless ``fields`` give them."""
    return {
        "study": "demo",
        "store": "s.db",
        "report": "r.html",
        "fits_file": "fits.json",
        "runs": {"planned": 2, "ran_now": 0, "done": 2},
        "seconds": 1.0,
        "fits": [],
        "critical": [],
        "recommendation": None,
        "notes": [],
        **fields,
    }


def test_demo_table_says_when_a_floor_fits_to_zero():
    from ftscale.demo import format_demo
    from ftscale.report.summary import floor_vanishes

    points = [
        {"task": "t", "method": m, "loss": loss} for m in ("fmt", "lora") for loss in (4.9, 3.6)
    ]

    def fit(method, e):
        f = {
            "group": {"task": "t", "method": method},
            "law": "multiplicative",
            "params": {"A": 14.9, "alpha": 0.079, "beta": 0.042, "E": e},
            "delta_e": 0.02,
            "delta_h": 0.1,
            "converged": True,
            "at_bound": [],
        }
        return {**f, "no_floor": floor_vanishes(f, points)}  # as the demo's result holds it

    result = _demo_result(
        runs={"planned": 2, "ran_now": 2, "done": 2, "failed": 0, "diverged": 0},
        fits=[fit("fmt", 1.5e-9), fit("lora", 3.25)],
    )
    lines = format_demo(result).splitlines()
    [fmt_line] = [ln for ln in lines if ln.strip().startswith("FMT")]
    [lora_line] = [ln for ln in lines if ln.strip().startswith("LoRA")]
    assert "E ~ 0: no floor" in fmt_line and "E ~ 0" not in lora_line


def test_demo_answer_carries_its_flags():
    from ftscale.demo import format_demo

    flag = "800 examples is outside the LoRA runs at model size 1.2M (12-400 examples): ..."
    curve = "ftlm-3/LoRA on translate-en-de: loss rises from 125 to 400 examples by 0.05 ..."
    result = _demo_result(
        critical=[
            {
                "methods": ["fmt", "lora"],
                "points": [{"x": 1e6, "critical_data_size": 32.0, "extrapolated": True}],
                "closed_form": {"H": None, "defined": False},
            }
        ],
        answer={
            "tasks": [
                {
                    "text": "translate-en-de: at model size 1.2M with 800 examples, use FMT",
                    "flags": [{"kind": "data_size", "message": flag}],
                }
            ]
        },
        health={"curves": [{"message": curve}], "laws": [], "critical": [{}], "flips": []},
    )
    lines = format_demo(result).splitlines()
    i = lines.index("Answer: translate-en-de: at model size 1.2M with 800 examples, use FMT")
    assert lines[i + 1] == f"  - {flag}"
    assert "FMT vs LoRA: 1M: 32 (extrapolated beyond the runs); closed form H undefined" in (
        " ".join(lines)
    )
    assert "Health: 2 flags (in the report, under What to do about the flags)." in lines
    assert f"  - {curve}" in lines


def test_demo_table_prints_every_law_whatever_its_parameters():
    """The demo prints every fitted joint law: a law without alpha (zero_shot_scaled) or with
    D_l and B once made the table raise KeyError after all 96 runs had finished."""
    from ftscale.demo import format_demo
    from ftscale.laws import LAWS

    fits = [
        {
            "group": {"task": "t", "method": "lora"},
            "law": name,
            "params": dict.fromkeys(cls.param_names, 1.5),
            "delta_e": 0.02,
            "delta_h": None if i % 2 else 0.1,
            "cv_error": 0.05 if i % 2 else None,
            "chosen": i == 0,
            "converged": True,
            "at_bound": [],
        }
        for i, (name, cls) in enumerate((n, c) for n, c in LAWS.items() if c.n_factors == 2)
    ]
    result = _demo_result(fits=fits)
    lines = [ln for ln in format_demo(result).splitlines() if ln.strip().startswith("LoRA")]
    assert len(lines) == len(fits)
    for line, f in zip(lines, fits, strict=True):
        assert f["law"] in line and all(f"{k}=1.5" in line for k in f["params"])
    assert lines[0].split()[2] == "*"  # the chosen law is marked
