"""``study fit``'s compute-matched critical budgets (critical_flops) and, for pet_size studies,
its PET-size choice (pet_size_choice), on simulated runs with known laws and costs."""

import os

import numpy as np
import pytest

from ftscale.analysis.study import fit_study, format_fits
from ftscale.laws.critical import critical_budget
from ftscale.laws.io import law_from_record
from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import SIM_LAWS, simulated_run, simulated_study

HASHES = {"sim-task": "fixture"}
TOKENS = 100
FLOPS_PER_TOKEN = {"fmt": 6.0, "lora": 4.0}


def run_with_flops(spec):
    """A simulated run that also reports training FLOPs: 6N (FMT) or 4N (LoRA) per token."""
    rec = simulated_run(spec)
    rec["flops"] = FLOPS_PER_TOKEN[spec["method"]] * rec["model_size"] * TOKENS * spec["data_size"]
    return rec


def _fit(tmp_path_factory, d, run_fn):
    os.environ["FTSCALE_RUN_FN"] = run_fn
    try:
        study = parse_study(d)
        db = tmp_path_factory.mktemp("compute") / "s.db"
        run_study(study, db, workers=1, progress=False, data_hashes=HASHES)
        with RunStore(db) as store:
            return study, fit_study(study, store, HASHES)
    finally:
        del os.environ["FTSCALE_RUN_FN"]


@pytest.fixture(scope="module")
def flops_study(tmp_path_factory):
    d = simulated_study(models=("sim-1e5", "sim-3e5", "sim-1e6", "sim-3e6"), seeds=1)
    d["data_sizes"] = {m: [100, 300, 1000, 3000, 10000] for m in ("fmt", "lora")}
    d["fit"] = {"bootstrap": 10}
    return _fit(tmp_path_factory, d, f"{__name__}:run_with_flops")


def true_loss(m, x, d):
    a, alpha, beta, e = SIM_LAWS[m]
    return a * x**-alpha * d**-beta + e


def test_critical_flops_matches_the_true_laws(flops_study):
    _, doc = flops_study
    [pair] = doc["critical_flops"]
    assert pair["cost_column"] == "flops" and pair["task"] == "sim-task"
    fits = {f["group"]["method"]: f for f in doc["fits"] if f["law"] == "multiplicative"}
    m1, m2 = pair["methods"]
    found = 0
    for pt in pair["points"]:
        x = pt["x"]
        assert pt["range"] is not None
        # the fitted laws' own crossing, recomputed
        again = critical_budget(
            law_from_record(fits[m1]), law_from_record(fits[m2]),
            fits[m1]["cost_models"]["flops"], fits[m2]["cost_models"]["flops"],
            x, *pt["range"],
        )  # fmt: skip
        assert pt["crossings"] == pytest.approx(again["crossings"])
        if pt["critical_budget"] is None:
            continue
        # at the crossing, the true laws at the true compute-matched data sizes agree too
        f = pt["critical_budget"]
        ds = {m: f / (FLOPS_PER_TOKEN[m] * x * TOKENS) for m in (m1, m2)}
        assert pt["data_sizes"] == pytest.approx([ds[m1], ds[m2]], rel=1e-6)
        gap = true_loss(m1, x, ds[m1]) - true_loss(m2, x, ds[m2])
        assert abs(gap) < 0.01
        found += 1
    assert found, "the simulated methods cross on the FLOPs axis"
    assert "critical flops" in format_fits(doc)


def test_pet_size_study_has_no_choice_without_pet_factor(flops_study):
    assert flops_study[1]["pet_size_choice"] == []


@pytest.fixture(scope="module")
def pet_study(tmp_path_factory):
    d = simulated_study(models=("sim-1e6",), seeds=1)
    d["study"].update(factor="pet_size", methods=["lora"])
    d["pet_sizes"] = {"lora": [2, 4, 8, 16]}
    d["data_sizes"] = {"lora": [100, 300, 1000, 3000]}
    # one model: holding out its largest model size would hold out everything
    d["fit"] = {"bootstrap": 10, "holdout_largest": ["pet_size", "data_size"]}
    return _fit(tmp_path_factory, d, "ftscale.testing.simulated:simulated_run")


def test_pet_size_choice_in_the_study_document(pet_study):
    _, doc = pet_study
    assert doc["critical_flops"] == []  # simulated runs record no FLOPs
    [entry] = doc["pet_size_choice"]
    assert entry["task"] == "sim-task" and entry["data_size"] == 3000
    ch = entry["methods"]["lora"]
    assert [c["pet_size"] for c in ch["candidates"]] == [2, 4, 8, 16]
    # the simulated loss does not depend on the PET size: the smallest size is within 0.01
    assert ch["smallest_within_tolerance"] == 2
    assert ch["predicted_loss"] == pytest.approx(true_loss("lora", 1e6, 3000), abs=0.01)
    assert np.isfinite(ch["best_loss"]) and ch["loss_gap"] <= entry["tolerance"]
    assert "pet size LoRA (sim-task) at 3,000 examples: 2, the smallest within 0.01" in format_fits(
        doc
    )
