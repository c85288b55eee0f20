"""Law choice by cross-validated extrapolation error and calibrated draws
(ftscale.analysis.calibrate), on simulated points with known laws."""

import numpy as np
import pandas as pd
import pytest

from ftscale.analysis.calibrate import choose, folds, seed_variance
from ftscale.analysis.study import fit_points
from ftscale.study.spec import FitSpec

MODELS = (1e6, 3e6, 1e7, 3e7)


def _points(law, sizes, sd=0.01, seeds=2, rng=None, method="fmt"):
    rng = rng or np.random.default_rng(0)
    rows = []
    for i, x in enumerate(MODELS):
        for d in sizes:
            runs = law(x, d) + rng.normal(0, sd, seeds)
            rows.append(
                {
                    "task": "t",
                    "method": method,
                    "model": f"m{i}",
                    "pet_size": None,
                    "model_size": x,
                    "data_size": float(d),
                    "loss": runs.mean(),
                    "loss_std": runs.std(ddof=0),
                    "n_seeds": seeds,
                }
            )
    return pd.DataFrame(rows)


def pre_power(x, d):
    """A curve in its pre-power phase over the grid: D_l = 400 examples."""
    return 3000 * x**-0.3 * (d + 400) ** -0.5 + 1.0


def plain(x, d):
    return 30 * x**-0.2 * d**-0.3 + 0.9


def test_seed_variance_pools_the_points():
    pts = pd.DataFrame({"loss_std": [0.1, 0.2, np.nan], "n_seeds": [2, 2, 1]})
    # sum n * pop_var / sum (n - 1) = (2 * 0.01 + 2 * 0.04) / 2
    assert seed_variance(pts) == pytest.approx(0.05)
    assert seed_variance(pd.DataFrame({"loss_std": [0.0], "n_seeds": [1]})) is None


def test_folds_leave_the_largest_data_size_and_factor_out():
    X = np.repeat([1.0, 2.0, 3.0], 3)
    D = np.tile([10.0, 20.0, 40.0], 3)
    names = {n: left for n, left in folds(X, D, 4)}
    assert set(names) == {"data_size", "factor", "smallest_data_size"}
    assert (names["data_size"] == (D == 40)).all() and (names["factor"] == (X == 3)).all()
    assert (names["smallest_data_size"] == (D == 10)).all()
    # too few points left for 8 parameters: no fold
    assert folds(X, D, 8) == []


def test_choose_marks_the_lowest_cv_error_and_says_why():
    recs = [
        {"law": "a", "cv_error": 0.05, "converged": True, "params": {"p": 1}},
        {"law": "b", "cv_error": 0.01, "converged": True, "params": {"p": 1, "q": 2}},
        {"law": "c", "cv_error": 0.001, "converged": False, "params": {}},
    ]
    assert choose(recs)["law"] == "b"
    assert [r["chosen"] for r in recs] == [False, True, False]
    assert "0.0100" in recs[1]["why"] and "a 0.0500" in recs[1]["why"]


def test_choose_prefers_the_simpler_law_within_one_standard_error():
    def rec(law, n_params, errs):
        pts = [{"fold": "data_size", "observed": 1.0 + e, "predicted": 1.0} for e in errs]
        return {
            "law": law,
            "cv_error": float(np.mean(np.abs(errs))),
            "cv_points": pts,
            "converged": True,
            "params": dict.fromkeys(range(n_params), 1.0),
        }

    rich = rec("rich", 5, [0.01, 0.03, 0.02])  # cv 0.02, standard error 0.0058
    simple = rec("simple", 4, [0.02, 0.025, 0.02])  # cv 0.0217: within one standard error
    assert choose([rich, simple]) is simple and "fewest parameters" in simple["why"]
    far = rec("far", 4, [0.05, 0.06, 0.05])
    assert choose([rich, far]) is rich


@pytest.mark.slow
def test_study_fit_chooses_the_rectified_law_on_a_pre_power_curve():
    rng = np.random.default_rng(1)
    pts = pd.concat(
        [
            _points(pre_power, (25, 80, 250, 800), rng=rng, method="fmt"),
            _points(plain, (12, 40, 125, 400), rng=rng, method="lora"),
        ],
        ignore_index=True,
    )
    doc = fit_points(pts, "model_size", FitSpec(bootstrap=30))
    chosen = {f["group"]["method"]: f for f in doc["fits"] if f.get("chosen")}
    assert set(chosen) == {"fmt", "lora"}
    assert chosen["fmt"]["law"] in ("multiplicative_rectified", "additive_rectified")
    mult = next(
        f for f in doc["fits"] if f["law"] == "multiplicative" and f["group"]["method"] == "fmt"
    )
    # the plain law extrapolates the accelerating curve worse than the chosen one
    assert chosen["fmt"]["delta_h"] < mult["delta_h"]
    for f in doc["fits"]:
        assert len(f["heldout_points"]) == 7  # largest model (4 sizes) + largest size (3 more)
        for p in f["heldout_points"]:
            assert p["lo"] < p["predicted"] < p["hi"]
            assert {"model_size", "data_size", "observed", "n_seeds"} <= set(p)
    a = doc["answer"]["tasks"][0]
    assert set(a["laws"]) == {"fmt", "lora"}
    assert all(r["predictive_interval"] for r in a["ranking"])
    assert "cross-validated error" in a["text"]


def test_widened_draws_cover_an_extrapolation_the_law_misses():
    """A plain multiplicative law on a pre-power curve: its CV errors are large, so its
    draws widen (scale > 1) and its held-out intervals grow with them."""
    pts = _points(pre_power, (25, 80, 250, 800), rng=np.random.default_rng(2))
    doc = fit_points(pts, "model_size", FitSpec(laws=("multiplicative",), bootstrap=40))
    (f,) = doc["fits"]
    assert f["chosen"] and f["noise"]["scale"] > 1.0
    base = fit_points(
        pts, "model_size", FitSpec(laws=("multiplicative",), bootstrap=40), calibrate=False
    )
    assert base["fits"][0].get("heldout_points") is None
    widths = [p["hi"] - p["lo"] for p in f["heldout_points"]]
    assert min(widths) > 0
