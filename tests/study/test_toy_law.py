"""A new law is one file plus one registry line for every feature: a toy law, defined here and
registered at run time (the one registry line), runs end to end through the study's features
(study fit, report build, adaptive suggest) without any feature naming it."""

import os

import numpy as np
import pytest

from ftscale.analysis.study import fit_study
from ftscale.laws import LAWS
from ftscale.laws.base import ScalingLaw
from ftscale.laws.recommend import p_best
from ftscale.report.build import build_report
from ftscale.study import adaptive
from ftscale.study.adaptive.question import parse_question, resolve_question
from ftscale.study.adaptive.uncertainty import current_answer, design_state
from ftscale.study.plan import plan_study
from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_study

HASHES = {"sim-task": "fixture"}
pytestmark = pytest.mark.slow  # a simulated study, fitted, reported and scored: ~7 s


class ToyLaw(ScalingLaw):
    """L = K * (X^a * D^b)^-1 + F: the multiplicative form under other parameter names, so no
    feature can lean on the names A, alpha, beta, E or on the law's name."""

    name = "toy"
    formula = "L = K * X^-a * D^-b + F"
    param_names = ("K", "a", "b", "F")
    log_params = frozenset({"K", "F"})
    n_factors = 2
    default_grid = {
        "K": (0.0, 5.0, 10.0),
        "a": (0.0, 0.3, 1.0),
        "b": (0.0, 0.3, 1.0),
        "F": (-1.0, 0.0, 0.5),
    }

    @staticmethod
    def log_pred(theta, x, d):
        k, a, b, f = (theta[:, i, None] for i in range(4))
        u = k - a * x - b * d
        lp = np.logaddexp(u, f)
        w = np.exp(u - lp)
        return lp, np.stack([w, -x * w, -d * w, 1.0 - w], axis=-1)


def toy_study_dict() -> dict:
    d = simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=2)
    d["study"]["methods"] = ["fmt", "lora"]
    d["data_sizes"] = {m: [100, 300, 1000, 3000, 10000] for m in ("fmt", "lora")}
    d["fit"] = {"laws": ["toy"], "bootstrap": 20, "holdout_largest": []}
    return d


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setitem(LAWS, "toy", ToyLaw)  # the one registry line
    mp.setenv("FTSCALE_RUN_FN", "ftscale.testing.simulated:simulated_run")
    try:
        study = parse_study(toy_study_dict())
        tmp = tmp_path_factory.mktemp("toy")
        # The largest data size stays unrun: adaptive then has candidates to score.
        keys = {r.run_key for r in plan_study(study, HASHES) if r.spec["data_size"] < 10000}
        run_study(study, tmp / "s.db", workers=1, progress=False, data_hashes=HASHES, only=keys)
        with RunStore(tmp / "s.db") as store:
            doc = fit_study(study, store, HASHES)
            out = build_report(study, store, tmp / "report", doc=doc, data_hashes=HASHES)
            sug = adaptive.suggest(study, store, doc, n=3, data_hashes=HASHES)
            crit = adaptive.suggest(study, store, doc, "critical fmt,lora", n=3, data_hashes=HASHES)
        yield doc, out, sug, crit
    finally:
        mp.undo()
        assert "toy" not in LAWS and "FTSCALE_RUN_FN" not in os.environ


def test_study_fit_fits_and_chooses_the_toy_law(toy_study):
    doc, *_ = toy_study
    joint = [f for f in doc["fits"] if f["factor"] is not None]
    assert joint and all(f["law"] == "toy" and f["chosen"] for f in joint)
    assert {f["group"]["method"] for f in joint} == {"fmt", "lora"}
    assert all(f["bootstrap_params"] for f in joint)
    rec = doc["recommendations"][0]
    assert rec["best"] in ("fmt", "lora") and rec["p_best"] is not None


def test_report_lists_the_toy_law(toy_study):
    _, out, *_ = toy_study
    md = (out / "report.md").read_text()
    assert "Fit quality: toy (Tables 2 and 6; nats/token)" in md
    assert "toy Δe" in md and "toy Δh" in md
    assert "multiplicative" not in md and "additive" not in md


def test_adaptive_scores_runs_on_the_toy_law(toy_study):
    doc, _, sug, crit = toy_study
    for s in (sug, crit):
        assert s["mode"] == "sharpen", s["notes"]
        assert all(r["data_size"] == 10000 for r in s["suggestions"])
        assert (
            s["current"] is not None and s["current"]["uncertainty"] >= -1e-12
        )  # 1 - P(best), to rounding
    assert crit["suggestions"], crit["notes"]  # runs that narrow the critical interval
    # The adaptive P(best) is the recommendation's: one function computes both.
    study = parse_study(toy_study_dict())
    q = resolve_question(parse_question(None, study), study, doc)
    state, missing = design_state(q, doc)
    assert not missing
    probs, n = p_best(state.laws, q.x, q.data_size)
    cur = current_answer(state)
    assert cur["p_best"] == probs[cur["best"]] == sug["current"]["p_best"] and n >= 2
