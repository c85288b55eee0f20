"""Parameter recovery for every law form, gradients, bootstrap determinism."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from ftscale.laws import LAWS, get_law
from ftscale.laws.optim import huber_objective

TRUTH = {
    "multiplicative": {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75},
    "additive": {"A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28, "E": 1.69},
    "power": {"A": 5.0, "beta": 0.3, "E": 0.8},
    "rectified": {"B": 50.0, "D_l": 20.0, "beta": 0.5, "E": 0.9},
    "rectified_power": {"B": 200.0, "D_l": 20.0, "beta": 0.6, "gamma": 1.5, "E": 0.9},
    "multiplicative_rectified": {"A": 300.0, "alpha": 0.3, "beta": 0.4, "D_l": 60.0, "E": 1.0},
    "lin_rectified": {"A": 300.0, "alpha": 0.3, "beta": 0.4, "D_l": 5.0, "E": 1.0},
    "additive_rectified": {
        "A": 400.0,
        "alpha": 0.34,
        "B": 30.0,
        "beta": 0.5,
        "D_l": 50.0,
        "E": 1.2,
    },
    "zero_shot_rectified": {"A": 3.0, "alpha": 1.2, "beta": 0.4, "D_l": 30.0, "E": 1.0},
    "zero_shot_scaled": {"A": 3.0, "beta": 0.4, "D_l": 30.0, "E": 1.0},
}
#: The covariate laws' zero-shot loss per model size: not a power of the size (as ours are not).
ZERO_SHOT = tuple(zip(np.geomspace(1e6, 3e7, 5).tolist(), [4.0, 3.4, 3.1, 2.7, 2.5], strict=True))


def make(name, **hyper):
    """An unfitted law of form ``name``; a covariate law with the zero-shot map of the design."""
    cls = get_law(name)
    return cls(covariate_map=ZERO_SHOT, **hyper) if cls.covariate else cls(**hyper)


def design(name):
    cls = get_law(name)
    if name == "multiplicative":
        X, D = np.meshgrid([1e9, 2e9, 4e9, 8e9, 1.6e10], np.geomspace(1e4, 4.5e6, 6))
        return X.ravel(), D.ravel()
    if name == "additive":
        X, D = np.meshgrid(np.geomspace(1e8, 1e10, 8), np.geomspace(1e8, 1e10, 6))
        return X.ravel(), D.ravel()
    if name.endswith("_rectified") or cls.covariate:  # lin_rectified and the zero-shot laws too
        # the zero-shot point (D = 0) and the pre-power phase (D < D_l) in the design
        X, D = np.meshgrid(np.geomspace(1e6, 3e7, 5), [0.0, 10, 30, 100, 300, 1000, 3000])
        return X.ravel(), D.ravel()
    assert cls.n_factors == 1
    if cls.accepts_zero_data:  # the zero-shot point too
        return None, np.concatenate([[0.0], np.geomspace(10, 1e5, 20)])
    return None, np.geomspace(10, 1e5, 14)


def test_every_law_is_tested():
    assert set(TRUTH) == set(LAWS)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_gradient_matches_finite_differences(name):
    cls = get_law(name)
    X, D = design(name)
    x = None if X is None else make(name).map_log_x(np.log(X))  # the law's own factor
    theta = cls.to_free(TRUTH[name]) + 0.05
    with np.errstate(divide="ignore"):
        logd = np.log(D)
    lp, g = cls.log_pred(theta[None], x, logd)
    for j in (0, len(D) // 2, len(D) - 1):
        num = approx_fprime(theta, lambda t, j=j: cls.log_pred(t[None], x, logd)[0][0, j], 1e-7)
        np.testing.assert_allclose(g[0, j], num, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_parameter_recovery_with_noise(name):
    X, D = design(name)
    rng = np.random.default_rng(7)
    L = make(name).load_fitted(TRUTH[name]).predict(X, D) * (1 + 0.002 * rng.normal(size=D.size))
    law = make(name).fit(X, D, L)
    assert law.converged_
    for k, v in TRUTH[name].items():
        tol = 0.25 if k in ("A", "B", "D_l") else 0.05  # scales are loosely identified
        assert law.params_[k] == pytest.approx(v, rel=tol), (k, law.params_)
    # Delta_e is the mean |L_hat - L|: of the order of the noise (0.2% of ~1 nat).
    assert law.delta_e_ < 0.01
    assert law.predict(X, D).shape == D.shape


def test_log_space_fit_recovers_too():
    X, D = design("multiplicative")
    L = get_law("multiplicative").predict_with(TRUTH["multiplicative"], X, D)
    law = get_law("multiplicative")(space="log").fit(X, D, L)
    assert law.params_["alpha"] == pytest.approx(0.52, rel=0.02)
    assert law.params_["beta"] == pytest.approx(0.15, rel=0.02)


def test_summed_huber_objective_value():
    cls = get_law("power")
    D = np.array([10.0, 100.0])
    y = np.array([1.0, 1.0])
    fun = huber_objective(cls.log_pred, None, np.log(D), y, delta=1e-3)
    theta = cls.to_free({"A": 1e-12, "beta": 0.0, "E": 1.0005})[None]
    f, _ = fun(theta, np.zeros(1, int))
    # residual 5e-4 < delta: quadratic branch, summed (not averaged) over the 2 points
    assert f[0] == pytest.approx(2 * 0.5 * 5e-4**2, rel=1e-6)
    theta = cls.to_free({"A": 1e-12, "beta": 0.0, "E": 1.01})[None]
    f, _ = fun(theta, np.zeros(1, int))
    assert f[0] == pytest.approx(2 * 1e-3 * (0.01 - 0.5e-3), rel=1e-6)


def test_bootstrap_is_deterministic_for_a_seed_and_covers_truth():
    X, D = design("multiplicative")
    cls = get_law("multiplicative")
    L = cls.predict_with(TRUTH["multiplicative"], X, D) * (
        1 + 0.003 * np.random.default_rng(1).normal(size=D.size)
    )
    a = cls(n_bootstrap=60, seed=5).fit(X, D, L)
    b = cls(n_bootstrap=60, seed=5).fit(X, D, L)
    c = cls(n_bootstrap=60, seed=6).fit(X, D, L)
    assert a.ci_ == b.ci_
    np.testing.assert_array_equal(a.bootstrap_params_, b.bootstrap_params_)
    assert a.ci_ != c.ci_
    lo, hi = a.ci_["beta"]
    assert lo < 0.15 < hi
    iv = a.predict_interval(1e9, 1e5)
    assert iv[0] <= a.predict(1e9, 1e5) <= iv[1]


def test_delta_h_on_held_out_split():
    X, D = design("multiplicative")
    cls = get_law("multiplicative")
    rng = np.random.default_rng(2)
    L = cls.predict_with(TRUTH["multiplicative"], X, D) + 0.003 * rng.normal(size=D.size)
    held = X.max() == X
    law = cls().fit(X[~held], D[~held], L[~held], holdout=(X[held], D[held], L[held]))
    assert law.n_holdout_ == held.sum()
    expected = np.mean(np.abs(law.predict(X[held], D[held]) - L[held]))
    assert law.delta_h_ == pytest.approx(expected)
    assert 0 < law.delta_h_ < 0.02


def test_fixed_parameters_stay_fixed():
    X, D = design("multiplicative")
    cls = get_law("multiplicative")
    L = cls.predict_with(TRUTH["multiplicative"], X, D)
    law = cls().fit(X, D, L, fixed={"beta": 0.15, "E": 0.75})
    assert law.params_["beta"] == 0.15 and law.params_["E"] == pytest.approx(0.75)
    assert law.params_["alpha"] == pytest.approx(0.52, rel=0.01)
    assert law.fixed_ == ["E", "beta"]


def test_non_convergence_is_reported():
    X, D = design("multiplicative")
    cls = get_law("multiplicative")
    L = cls.predict_with(TRUTH["multiplicative"], X, D)
    with pytest.warns(Warning, match="did not converge"):
        law = cls(
            max_iter=1, n_polish=1, grid={"A": (0.0,), "alpha": (0.0,), "beta": (0.0,), "E": (0.0,)}
        )
        law.fit(X, D, L)
    assert law.converged_ is False


def test_laws_import_numpy_and_scipy_only():
    import subprocess
    import sys

    code = (
        "import sys, ftscale.laws\n"
        "bad = [m for m in ('pandas', 'torch', 'pyarrow', 'transformers') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


def test_zero_data_size_is_the_zero_shot_point():
    """D = 0 rows are accepted by the laws with a pre-learned data size and refused by the
    others, with a message that says why."""
    from ftscale.errors import UserError

    p = TRUTH["multiplicative_rectified"]
    law = get_law("multiplicative_rectified")().load_fitted(p)
    zs = law.predict(1e7, 0.0)
    assert zs == pytest.approx(p["A"] * 1e7 ** -p["alpha"] * p["D_l"] ** -p["beta"] + p["E"])
    r = get_law("rectified")().load_fitted(TRUTH["rectified"])
    assert r.predict(None, 0.0) == pytest.approx(50.0 / 20.0 + 0.9)
    with pytest.raises(UserError, match="pre-learned data size"):
        get_law("multiplicative")().fit([1e9] * 5, [0, 1, 2, 3, 4], [1.0] * 5)


def test_zero_shot_point_helps_the_rectified_law():
    """On a curve measured only in its pre-power phase, the zero-shot point pins the plateau:
    the extrapolation to 100x the largest size is closer with it than without."""
    truth = {"B": 40.0, "D_l": 30.0, "beta": 0.6, "E": 1.0}
    cls = get_law("rectified")
    D = np.array([5.0, 10, 20, 40, 80, 160])
    rng = np.random.default_rng(3)
    errs = {}
    for zero in (False, True):
        e = []
        for _ in range(5):
            DD = np.r_[0.0, D] if zero else D
            L = cls.predict_with(truth, None, DD) + rng.normal(0, 0.01, DD.size)
            law = cls().fit(None, DD, L)
            e.append(abs(law.predict(None, 16000.0) - cls.predict_with(truth, None, 16000.0)))
        errs[zero] = float(np.mean(e))
    assert errs[True] < errs[False], errs
