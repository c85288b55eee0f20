"""Critical data size: closed form vs numeric roots, the paper's gamma, double crossings."""

import math

import numpy as np
import pytest

from ftscale.laws import closed_form, critical_data_size, crossings, get_law
from ftscale.laws.recommend import recommend

# The paper's Table 4, En-De, model-size scaling (FMT / Prompt / LoRA).
FMT = {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75}
PROMPT = {"A": 3.9e3, "alpha": 0.40, "beta": 0.051, "E": 0.62}
LORA = {"A": 2.1e3, "alpha": 0.36, "beta": 0.081, "E": 0.62}


def law(params, name="multiplicative"):
    return get_law(name)().load_fitted(params)


def test_gamma_fmt_vs_prompt_from_paper_values():
    cf = closed_form(FMT, PROMPT)
    assert cf["gamma"] == pytest.approx((0.40 - 0.52) / (0.15 - 0.051))
    assert round(cf["gamma"], 2) == -1.21
    # Table 5's other model-size gammas: F vs L -2.4 (our rounding -2.32), P vs L 1.5 (1.33)
    assert closed_form(FMT, LORA)["gamma"] == pytest.approx(-2.32, abs=0.01)


def test_closed_form_equals_numeric_root_when_E_equal():
    p1 = dict(FMT, E=0.62)
    for x in (1e9, 4e9, 1.6e10):
        cf = closed_form(p1, PROMPT)
        dc = cf["H"] * x ** cf["gamma"]
        res = critical_data_size(law(p1), law(PROMPT), x, 1e-6, 1e30)
        assert len(res["crossings"]) == 1
        assert res["critical_data_size"] == pytest.approx(dc, rel=1e-8)


def test_two_crossings_when_E_differ_and_none_reported_with_note():
    # Power laws with different E: A1 D^-b1 + E1 vs A2 D^-b2 + E2 can meet twice.
    # l1 is steep with a high floor, l2 shallow with a low floor: l2 wins, then l1, then l2.
    l1 = law({"A": 0.1, "beta": 0.8, "E": 0.5}, "power")
    l2 = law({"A": 1.0, "beta": 0.1, "E": 0.3}, "power")
    cs = crossings(l1, l2, None, 1e-2, 1e12)
    assert len(cs) == 2 and cs[0] < cs[1]
    for d in cs:
        assert l1.predict(None, d) == pytest.approx(l2.predict(None, d), abs=1e-9)
    res = critical_data_size(l1, l2, None, 1e-2, 1e12)
    assert res["critical_data_size"] == cs[0]
    far = critical_data_size(l1, l2, None, 1.0, 1e3)  # between the two crossings
    assert far["critical_data_size"] is None and far["note"].startswith("no crossing in")


def test_closed_form_not_defined_for_other_laws():
    assert closed_form({"A": 1, "alpha": 1, "B": 1, "beta": 1, "E": 1}, PROMPT) is None


def test_recommend_ranks_flips_and_cost():
    laws = {"fmt": law(FMT), "prompt": law(PROMPT), "lora": law(LORA)}
    costs = {
        "fmt": {"train_seconds": {"coef": [np.log(3e-12), 1.0, 1.0]}},
        "prompt": {"train_seconds": {"coef": [np.log(2e-12), 1.0, 1.0]}},
        "lora": {"train_seconds": {"coef": [np.log(2.2e-12), 1.0, 1.0]}},
    }
    out = recommend(laws, 1e9, 1e4, cost_models=costs, tolerance=0.5)
    losses = [r["predicted_loss"] for r in out["ranking"]]
    assert losses == sorted(losses)
    assert out["best"] == out["ranking"][0]["method"]
    # Every reported flip is a real change of the best method across it.
    for f in out["flips"]:
        lo, hi = f["data_size"] * 0.999, f["data_size"] * 1.001
        best_lo = min(laws, key=lambda m: laws[m].predict(1e9, lo))
        best_hi = min(laws, key=lambda m: laws[m].predict(1e9, hi))
        assert (best_lo, best_hi) == (f["from"], f["to"])
    # with a loose tolerance every method qualifies: the cheapest (prompt) is named
    assert out["cheapest_within_tolerance"]["method"] == "prompt"
    tight = recommend(laws, 1e9, 1e4, cost_models=costs, tolerance=0.0)
    assert tight["cheapest_within_tolerance"]["method"] == tight["best"]


def test_interval_fields_are_null_without_bootstrap_draws():
    res = critical_data_size(law(FMT), law(PROMPT), 1e9)
    assert res["critical_data_size"] is not None
    assert res["critical_data_size_ci"] is None
    assert res["p_crossing"] is None and res["n_draws"] is None


def test_p_crossing_counts_pairs_of_draws_and_the_interval_uses_the_crossing_ones():
    # Law 2 is flat; law 1's draws alternate between a crossing at D = 100 and none at all.
    l1 = law({"A": 1.0, "beta": 0.5, "E": 0.4}, "power")
    l2 = law({"A": 1e-9, "beta": 0.5, "E": 0.5}, "power")
    crossing = [1.0, 0.5, 0.4]  # 1/sqrt(D) + 0.4 = 0.5 (+ 1e-9/sqrt(D)) at D ~= 100
    never = [1.0, 0.5, 0.6]  # always above law 2
    l1.bootstrap_params_ = np.array([crossing, never] * 5)
    l2.bootstrap_params_ = np.array([list(l2.params_.values())] * 12)  # extra draws are unused
    res = critical_data_size(l1, l2, None, 1.0, 1e6)
    assert res["n_draws"] == 10
    assert res["p_crossing"] == 0.5
    lo, hi = res["critical_data_size_ci"]
    assert lo == pytest.approx(100.0, rel=1e-6) and hi == pytest.approx(100.0, rel=1e-6)


def test_bootstrap_interval_covers_the_true_critical_size():
    # Two power laws with equal E cross at D_c = (A1/A2)^(1/(beta1 - beta2)) = 3^5 = 243.
    t1 = {"A": 3.0, "beta": 0.3, "E": 0.5}
    t2 = {"A": 1.0, "beta": 0.1, "E": 0.5}
    true_dc = 3.0 ** (1 / 0.2)
    rng = np.random.default_rng(11)
    D = np.geomspace(10, 1e5, 14)
    fits = []
    for t in (t1, t2):
        L = law(t, "power").predict(None, D) * (1 + 0.003 * rng.normal(size=D.size))
        fits.append(get_law("power")(n_bootstrap=200, seed=0).fit(None, D, L))
    res = critical_data_size(fits[0], fits[1], None, 1.0, 1e8)
    lo, hi = res["critical_data_size_ci"]
    assert lo < true_dc < hi
    assert lo <= res["critical_data_size"] <= hi
    assert hi / lo < 3  # informative, not the whole range
    assert res["p_crossing"] >= 0.95 and res["n_draws"] == 200


def test_closed_form_with_nearly_equal_betas_does_not_overflow():
    """The demo's FMT vs prompt fits: A1/A2 ~ 1.3e-7 and beta1 - beta2 = -0.009 put H at
    ~10^767, past a float; H is then None and log10_H says where it lies."""
    p1 = {"A": 14.9, "alpha": 0.079, "beta": 0.042, "E": 0.0}
    p2 = {"A": 1.13e8, "alpha": 1.564, "beta": 0.051, "E": 4.649}
    cf = closed_form(p1, p2)
    assert cf["H"] is None
    assert cf["log10_H"] == pytest.approx(math.log10(14.9 / 1.13e8) / (0.042 - 0.051))
    assert cf["gamma"] == pytest.approx((1.564 - 0.079) / (0.042 - 0.051))
    small = closed_form({**p1, "beta": 0.142}, p2)  # an ordinary pair: H is a number
    assert small["H"] == pytest.approx(10 ** small["log10_H"])


def test_crossings_are_searched_from_one_example():
    """A crossing below 100 examples (the old lower bound) is found: miniature studies have
    their data there."""
    law1 = law({"A": 2.0, "beta": 0.5, "E": 1.0}, "power")  # steeper, starts higher
    law2 = law({"A": 1.0, "beta": 0.1, "E": 1.2}, "power")
    found = critical_data_size(law1, law2, None)
    d = found["critical_data_size"]
    assert d is not None and 1 < d < 100
    assert law1.predict(None, d) == pytest.approx(law2.predict(None, d))


def test_closed_form_is_undefined_when_the_beta_intervals_overlap():
    """Equal betas within their intervals put 1 / (beta1 - beta2) anywhere from -inf to inf:
    the demo's 10^811 was such a number. Separated intervals keep H."""
    p1 = {"A": 14.9, "alpha": 0.079, "beta": 0.042, "E": 3.0}
    p2 = {"A": 20.0, "alpha": 0.1, "beta": 0.051, "E": 3.0}
    overlap = closed_form(p1, p2, {"beta": [0.030, 0.055]}, {"beta": [0.045, 0.060]})
    assert overlap["defined"] is False
    assert overlap["H"] is None and overlap["log10_H"] is None and overlap["gamma"] is None
    assert "equal within their 95% intervals" in overlap["why"]
    apart = closed_form(p1, p2, {"beta": [0.040, 0.044]}, {"beta": [0.049, 0.053]})
    assert apart["defined"] is True and apart["why"] is None
    assert apart["log10_H"] == pytest.approx(math.log10(14.9 / 20.0) / (0.042 - 0.051))
    assert closed_form(p1, p2)["defined"] is True  # no intervals: computed, untested
    assert closed_form(p1, {**p2, "beta": 0.042})["defined"] is False  # exactly equal


def test_format_h_says_undefined():
    from ftscale.laws.critical import format_h

    p1 = {"A": 14.9, "alpha": 0.079, "beta": 0.042, "E": 3.0}
    p2 = {"A": 1.13e8, "alpha": 1.564, "beta": 0.051, "E": 3.0}
    assert format_h(closed_form(p1, p2)).startswith("10^")
    assert format_h(closed_form(p1, p2, {"beta": [0.03, 0.06]}, {"beta": [0.04, 0.07]})) == (
        "undefined"
    )


def test_p_best_counts_the_draws_where_each_method_is_lowest():
    # Two flat laws (beta = 0: loss A + E whatever D): draw k of "a" is lowest in 7 of 10 draws.
    a = law({"A": 1e-9, "beta": 0.0, "E": 1.0}, "power")
    b = law({"A": 1e-9, "beta": 0.0, "E": 1.1}, "power")
    a.bootstrap_params_ = np.array([[1e-9, 0.0, 1.0]] * 7 + [[1e-9, 0.0, 1.2]] * 3)
    b.bootstrap_params_ = np.array([[1e-9, 0.0, 1.1]] * 10)
    out = recommend({"a": a, "b": b}, None, 1e3)
    assert out["best"] == "a" and out["n_draws"] == 10
    assert out["p_best"] == pytest.approx(0.7)
    by = {r["method"]: r["p_best"] for r in out["ranking"]}
    assert by == {"a": pytest.approx(0.7), "b": pytest.approx(0.3)}


def test_p_best_sums_to_one_over_fitted_draws_and_is_none_without():
    rng = np.random.default_rng(5)
    X = np.repeat([1e9, 4e9], 5)
    D2 = np.tile(np.geomspace(100, 1e5, 5), 2)
    laws = {}
    for name, p in (("fmt", FMT), ("prompt", PROMPT), ("lora", LORA)):
        L = law(p).predict(X, D2) * (1 + 0.003 * rng.normal(size=D2.size))
        laws[name] = get_law("multiplicative")(n_bootstrap=30, seed=1).fit(X, D2, L)
    out = recommend(laws, 4e9, 1e4)
    assert sum(r["p_best"] for r in out["ranking"]) == pytest.approx(1.0)
    assert out["p_best"] == out["ranking"][0]["p_best"] and 0 < out["n_draws"] <= 30
    plain = recommend({m: law(p) for m, p in (("fmt", FMT), ("prompt", PROMPT))}, 1e9, 1e4)
    assert plain["p_best"] is None and plain["n_draws"] is None
    assert all(r["p_best"] is None for r in plain["ranking"])
