"""A study of one model (a real LLM a user wants to finetune): data scaling alone, fitted per
method with the one-factor laws of the data size, compared at that model."""

import copy

import numpy as np
import pandas as pd

from ftscale.analysis.study import fit_points, holdout_mask
from ftscale.study.plan import plan_study
from ftscale.study.spec import FitSpec, parse_study
from ftscale.testing.simulated import simulated_study

SIZES = (8, 16, 32, 64, 128, 256)
CURVES = {  # PET better at small data, FMT at large: they cross near 60 examples
    "fmt": lambda d: 4.0 * d**-0.45 + 1.0,
    "lora": lambda d: 1.9 * d**-0.15 + 0.9,
}


def _points(sd=0.005, seeds=2, rng=None):
    rng = rng or np.random.default_rng(0)
    rows = []
    for method, law in CURVES.items():
        for d in SIZES:
            runs = law(d) + rng.normal(0, sd, seeds)
            rows.append(
                {
                    "task": "t",
                    "method": method,
                    "model": "big-llm",
                    "pet_size": None,
                    "model_size": 2.7e8,
                    "data_size": float(d),
                    "loss": runs.mean(),
                    "loss_std": runs.std(ddof=0),
                    "n_seeds": seeds,
                }
            )
    return pd.DataFrame(rows)


def test_a_study_of_one_model_parses_and_plans(sim_env):
    d = copy.deepcopy(simulated_study())
    d["study"]["models"] = d["study"]["models"][:1]
    study = parse_study(d)
    runs = plan_study(study, {"sim-task": "fixture"})
    assert runs and {r.spec["model"] for r in runs} == {study.models[0]}


def test_the_only_model_is_not_held_out():
    pts = _points()
    mask = holdout_mask(pts, FitSpec(holdout_largest=("model_size", "data_size")))
    assert mask.sum() == 2 and (pts["data_size"][mask] == 256).all()


def test_one_model_fits_data_laws_and_answers():
    doc = fit_points(_points(), "model_size", FitSpec(laws=("auto",), bootstrap=100))
    assert doc["fits"], doc["notes"]
    assert all(f["factor"] is None and f["group"]["model_size"] == 2.7e8 for f in doc["fits"])
    chosen = {f["group"]["method"]: f for f in doc["fits"] if f.get("chosen")}
    assert set(chosen) == {"fmt", "lora"}
    answer = doc["answer"]["tasks"][0]
    assert answer["best"] == "fmt" and answer["data_size"] == 256  # FMT wins at the largest size
    crit = [c for c in doc["critical"] if set(c["methods"]) == {"fmt", "lora"}]
    assert crit, doc["critical"]


def test_the_report_draws_the_one_factor_fits_of_one_model():
    from ftscale.laws.io import chosen_records

    doc = fit_points(_points(), "model_size", FitSpec(laws=("auto",), bootstrap=0))
    chosen = chosen_records(doc["fits"])
    assert set(chosen) == {("t", "fmt"), ("t", "lora")}
    assert all(f.get("chosen") for f in chosen.values())
