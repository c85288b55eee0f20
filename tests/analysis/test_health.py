"""Curve and law health, and the extrapolation judgement, on synthetic points and records."""

import math

import numpy as np
import pandas as pd
import pytest

from ftscale.analysis.compare import pair_table, recommend_in
from ftscale.analysis.fit import FitOptions, fit_group
from ftscale.analysis.health import (
    curve_health,
    judge_range,
    law_health,
    mean_se,
    ranges_of,
    seed_sd,
)


def pt(d, loss, std, n=2, model="m1", method="lora"):
    return {
        "task": "t",
        "method": method,
        "model": model,
        "model_size": 1e6,
        "data_size": d,
        "loss": loss,
        "loss_std": std,
        "n_seeds": n,
    }


KEYS = ["task", "method", "model", "model_size"]


def test_seed_sd_is_the_sample_deviation_of_the_points_population_std():
    # seeds 1.0 and 1.2: population std 0.1, sample std 0.1 * sqrt(2)
    assert seed_sd(0.1, 2) == pytest.approx(0.1 * math.sqrt(2))
    assert mean_se(0.1, 2) == pytest.approx(0.1)
    assert seed_sd(0.0, 1) is None and mean_se(0.3, 1) is None


def test_a_curve_that_rises_more_than_its_seed_spread_is_named_with_its_sizes():
    pts = [pt(100, 2.0, 0.01), pt(400, 1.8, 0.01), pt(1200, 1.96, 0.01)]
    (flag,) = curve_health(pts, KEYS)
    assert (flag["from_size"], flag["to_size"]) == (400, 1200)
    assert flag["rise"] == pytest.approx(0.16)
    assert flag["spread"] == pytest.approx(math.hypot(*[0.01 * math.sqrt(2)] * 2))
    assert flag["n_seeds"] == [2, 2] and flag["single_seed"] is False
    assert flag["model"] == "m1" and flag["method"] == "lora" and flag["model_size"] == 1e6
    assert "from 400 to 1,200 examples by 0.16 nats/token" in flag["message"]
    assert "learning-rate search" in flag["message"]


def test_the_worst_rise_of_a_curve_is_reported_once():
    pts = [pt(100, 2.0, 0.001), pt(200, 2.05, 0.001), pt(400, 1.9, 0.001), pt(800, 2.2, 0.001)]
    (flag,) = curve_health(pts, KEYS)
    assert (flag["from_size"], flag["to_size"]) == (400, 800)  # 0.30, the largest rise


def test_a_rise_within_the_seed_spread_is_not_flagged():
    # 1.80 -> 1.83 with seeds scattered by 0.03 (sample sd 0.042 at each point)
    pts = [pt(100, 2.0, 0.03), pt(400, 1.80, 0.03), pt(1200, 1.83, 0.03)]
    assert curve_health(pts, KEYS) == []
    falling = [pt(100, 2.0, 0.0), pt(400, 1.8, 0.0), pt(1200, 1.7, 0.0)]
    assert curve_health(falling, KEYS) == []


def test_with_a_single_seed_any_rise_is_flagged_and_says_so():
    pts = [pt(100, 2.0, 0.0, n=1), pt(400, 2.001, 0.0, n=1)]
    (flag,) = curve_health(pts, KEYS)
    assert flag["spread"] is None and flag["single_seed"] is True and flag["n_seeds"] == [1, 1]
    assert "single seed" in flag["message"]


def test_curves_are_told_apart_by_their_keys():
    pts = [pt(100, 2.0, 0.0, n=1, model="a"), pt(400, 2.5, 0.0, n=1, model="b")]
    assert curve_health(pts, KEYS) == []  # two curves of one point each
    assert len(curve_health(pts, ["task", "method"])) == 1


def test_a_law_far_off_its_held_out_points_does_not_extrapolate():
    h = law_health(0.002, 0.05, [(0.004, 3), (0.004, 3)])
    assert h["extrapolates"] is False
    assert h["seed_noise"] == pytest.approx(0.004 * math.sqrt(3 / 2) / math.sqrt(3))
    assert "25.0x its fit error" in h["reason"] and h["threshold"] == pytest.approx(0.006)


def test_a_held_out_error_within_the_seed_noise_is_not_flagged():
    # 10x Delta_e, but the held-out means are noisy: standard error 0.05
    h = law_health(0.002, 0.02, [(0.05, 2)])
    assert h["seed_noise"] == pytest.approx(0.05)
    assert h["extrapolates"] is True and "within 2x the noise" in h["reason"]
    # ... and the law's own bootstrap spread there counts as noise too
    h = law_health(0.002, 0.02, [(0.0, 2)], law_sd=[0.03])
    assert h["law_noise"] == pytest.approx(0.03) and h["extrapolates"] is True
    assert law_health(0.002, 0.005, [(0.0, 2)])["extrapolates"] is True  # within 3x Delta_e


def test_without_seed_noise_the_delta_e_test_decides_alone():
    h = law_health(0.002, 0.0061, [(0.0, 1)])
    assert h["noise"] is None and h["threshold"] == pytest.approx(0.006)
    assert h["extrapolates"] is False and "no noise to compare with" in h["reason"]
    none = law_health(0.002, None)
    assert none["extrapolates"] is None and "no held-out points" in none["reason"]


def rec(lo, hi, by=None, factor_range=None):
    return {
        "data_range": [lo, hi],
        "factor_range": factor_range,
        "data_range_by_factor": by,
    }


def test_a_crossing_below_the_smallest_run_is_extrapolated_and_one_inside_is_not():
    fmt, lora = rec(25, 800), rec(12, 400)
    assert judge_range(3.2, [fmt, lora]) == {"measured_range": [25, 400], "extrapolated": True}
    assert judge_range(100, [fmt, lora])["extrapolated"] is False
    assert judge_range(600, [fmt, lora])["extrapolated"] is True  # beyond LoRA's runs
    assert judge_range(400, [fmt, lora])["extrapolated"] is False  # at an end: measured


def test_the_range_at_the_factor_value_is_used_where_the_runs_differ_by_it():
    by = [{"x": 1e5, "data_range": [12, 100]}, {"x": 1e6, "data_range": [12, 400]}]
    a = rec(12, 400, by, [1e5, 1e6])
    b = rec(12, 400, None, [1e5, 1e6])
    assert judge_range(200, [a, b], 1e6)["extrapolated"] is False
    assert judge_range(200, [a, b], 1e5) == {"measured_range": [12, 100], "extrapolated": True}
    assert judge_range(50, [a, b], 1e8)["extrapolated"] is True  # a model size outside the runs
    # records from an older fits file carry no ranges: nothing is claimed
    assert judge_range(50, [{}, b]) == {"measured_range": None, "extrapolated": None}
    assert ranges_of([12, 400, 100], [1e6, 1e6, 1e5])["data_range_by_factor"] == [
        {"x": 1e5, "data_range": [100.0, 100.0]},
        {"x": 1e6, "data_range": [12.0, 400.0]},
    ]


def _frame(truth, sizes, xs=(1e5, 1e6, 1e7), noise=0.002, seed=0):
    """Seed means of 3 seeds whose standard error is ``noise`` (nats/token)."""
    rng = np.random.default_rng(seed)
    rows = []
    for x in xs:
        for d in sizes:
            loss = truth["A"] * x ** -truth["alpha"] * d ** -truth["beta"] + truth["E"]
            rows.append(
                {
                    "model_size": x,
                    "data_size": float(d),
                    "loss": loss + noise * rng.normal(),
                    "loss_std": noise * math.sqrt(2),  # population std: se = std / sqrt(n - 1)
                    "n_seeds": 3,
                }
            )
    return pd.DataFrame(rows)


def _fit(frame, group, bootstrap=30):
    held = (frame["model_size"] == frame["model_size"].max()).to_numpy()
    record, _ = fit_group(
        "multiplicative",
        frame,
        held,
        group=group,
        factor="model_size",
        options=FitOptions(bootstrap=bootstrap),
        label=str(group),
    )
    return record


FMT = {"A": 200.0, "alpha": 0.30, "beta": 0.30, "E": 1.60}
LORA = {"A": 8.0, "alpha": 0.20, "beta": 0.12, "E": 1.62}


def test_fit_records_carry_their_ranges_and_law_health():
    record = _fit(_frame(FMT, [300, 1000, 3000, 10000]), {"method": "fmt"})
    assert record["data_range"] == [300.0, 10000.0]
    assert record["factor_range"] == [1e5, 1e7]
    assert [e["x"] for e in record["data_range_by_factor"]] == [1e5, 1e6, 1e7]
    h = record["health"]
    assert set(h) >= {"extrapolates", "reason", "seed_noise", "law_noise", "threshold"}
    assert h["seed_noise"] == pytest.approx(0.002)
    assert h["law_noise"] > 0  # the bootstrap's spread at the held-out points
    assert h["extrapolates"] is True  # the law the points follow


def test_pair_table_and_recommend_in_say_what_lies_beyond_the_runs():
    fmt = _fit(_frame(FMT, [300, 1000, 3000, 10000]), {"task": "t", "method": "fmt"})
    lora = _fit(_frame(LORA, [100, 300, 1000, 3000]), {"task": "t", "method": "lora"})
    from ftscale.laws.io import law_from_record

    laws = {"fmt": (law_from_record(fmt), fmt), "lora": (law_from_record(lora), lora)}
    (pair,) = pair_table(laws, [1e5, 1e7])
    for p in pair["points"]:
        d = p["critical_data_size"]
        assert p["measured_range"] == [300.0, 3000.0]
        assert p["extrapolated"] is (None if d is None else not 300 <= d <= 3000)
    assert any(p["extrapolated"] for p in pair["points"]), "the 1e5 crossing lies beyond 3,000"
    rec_ = recommend_in(laws, 1e7, 10000.0)
    rows = {r["method"]: r for r in rec_["ranking"]}
    assert rows["fmt"]["extrapolated"] is False and rows["lora"]["extrapolated"] is True
    for fl in rec_["flips"]:
        assert fl["extrapolated"] is not (300 <= fl["data_size"] <= 3000)


def test_a_law_of_the_wrong_form_is_flagged_on_its_held_out_points():
    """Losses 0.05 nats/token up at the held-out model size (a broken largest model) are far
    off any law fitted to the smaller ones."""
    frame = _frame(FMT, [300, 1000, 3000, 10000])
    big = frame["model_size"] == 1e7
    frame.loc[big, "loss"] += 0.05
    record = _fit(frame, {"method": "fmt"})
    assert record["health"]["extrapolates"] is False
    plain = _fit(frame, {"method": "fmt"}, bootstrap=0)
    assert plain["health"]["extrapolates"] is False and plain["health"]["law_noise"] is None
    assert "own uncertainty there is not counted" in plain["health"]["reason"]


def test_a_study_curve_is_named_by_model_method_and_task():
    from ftscale.analysis.study import health_of

    pts = [
        {**pt(d, loss, 0.015, model="ftlm-3"), "task": "translate-en-zh", "pet_size": 4.0}
        for d, loss in ((100, 2.0), (400, 1.80), (1200, 1.96))
    ]
    health = health_of([], pts, [], [], "model_size")
    (c,) = health["curves"]
    assert c["message"].startswith(
        "ftlm-3/LoRA on translate-en-zh: loss rises from 400 to 1,200 examples by 0.16 nats/token, "
        "more than the seed spread 0.03"
    )
    assert c["model"] == "ftlm-3" and c["model_size"] == 1e6
