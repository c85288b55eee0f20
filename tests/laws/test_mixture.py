"""Pooled draws of several laws (ftscale.laws.mixture.LawMixture)."""

import numpy as np
import pytest

from ftscale.laws.critical import critical_data_size
from ftscale.laws.mixture import LawMixture
from ftscale.laws.registry import get_law

MULT = {"A": 30.0, "alpha": 0.2, "beta": 0.3, "E": 0.9}
ADD = {"A": 20.0, "alpha": 0.2, "B": 5.0, "beta": 0.3, "E": 0.5}


def _with_draws(name, params, n=100, seed=0):
    law = get_law(name)().load_fitted(params)
    rng = np.random.default_rng(seed)
    base = np.array([params[k] for k in law.param_names])
    law.bootstrap_params_ = base * np.exp(0.02 * rng.standard_normal((n, base.size)))
    return law


def test_pooled_draws_follow_the_weights_and_the_point_is_the_first_members():
    mult, add = _with_draws("multiplicative", MULT), _with_draws("additive", ADD)
    mix = LawMixture([(mult, 3.0), (add, 1.0)])
    members = mix.bootstrap_params_[:, 0]
    assert (members == 0).sum() == 75 and (members == 1).sum() == 25
    assert mix.weights_ == pytest.approx([0.75, 0.25])
    X, D = np.array([1e9, 4e9]), np.array([100.0, 3000.0])
    np.testing.assert_allclose(mix.predict(X, D), mult.predict(X, D))
    draws = mix.draw_predictions(X, D)
    assert draws.shape == (100, 2) and np.isfinite(draws).all()
    # each pooled draw predicts as its member's own draw does
    lo_m, hi_m = np.percentile(mult.draw_predictions(X, D), [0, 100], axis=0)
    lo_a, hi_a = np.percentile(add.draw_predictions(X, D), [0, 100], axis=0)
    own = draws[members == 0]
    assert (own >= lo_m - 1e-12).all() and (own <= hi_m + 1e-12).all()
    other = draws[members == 1]
    assert (other >= lo_a - 1e-12).all() and (other <= hi_a + 1e-12).all()
    lo, hi = mix.predict_interval(X, D)
    assert (lo < hi).all()


def test_a_member_without_weight_adds_no_draws_and_crossings_use_the_pool():
    mult, add = _with_draws("multiplicative", MULT), _with_draws("additive", ADD)
    alone = LawMixture([(mult, 1.0), (add, 0.0)])
    assert (alone.bootstrap_params_[:, 0] == 0).all()
    other = _with_draws("multiplicative", {**MULT, "A": 60.0, "beta": 0.45}, seed=1)
    res = critical_data_size(LawMixture([(mult, 1.0), (add, 1.0)]), other, 1e9)
    assert res["n_draws"] == 100 and res["critical_data_size_interval"] is not None
