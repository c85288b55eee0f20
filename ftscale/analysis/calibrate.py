"""Law choice by held-out error and predictive intervals that cover.

One fitted law of a group (:func:`ftscale.analysis.fit.fit_group`) is calibrated here:

- **Noise model.** A point is the mean of its seeds' losses. The seed variance s^2 is pooled
  over the group's fitted points (sum of n_i * pop_var_i over sum of (n_i - 1), points with at
  least two seeds); a point's mean then scatters with s^2 / n_i. What the law leaves beyond that
  is its lack of fit tau^2 = max(0, RSS / (n - p) - mean(s^2 / n_i)) (without seed information:
  tau^2 = RSS / (n - p), all of the residual). A point's noise sd_i = sqrt(s^2 / n_i + tau^2).
- **Cross-validation that respects extrapolation.** Folds of the fitted points: leave the
  largest data size out (with five sizes or more, also the two largest), leave the largest
  factor value out, and leave the smallest data size
  out (a fold that would leave fewer points than the law's parameters + 1 is skipped). The law
  is refitted to the rest (from the full fit's optimum) and predicts the left-out points; its
  parametric bootstrap there gives the fold's own uncertainty. ``cv_error`` is the mean
  |observed - predicted| over the points left out by the upward folds (nats/token): the
  error of an extrapolation like the one the answer makes. Laws are chosen by it
  (:func:`choose`); the third fold (crossings below the runs) only widens the draws.
- **Extrapolation widening.** z_j^2 = r_j^2 / (var of the fold's draws at j + sd_j^2) says how
  much bigger the CV errors are than the uncertainty the bootstrap claims; ``scale`` =
  max(1, sqrt(mean z^2)) multiplies the noise of the final parametric bootstrap. A law that
  extrapolated badly in CV therefore has wide draws, and everything taken from them (intervals,
  P(best), critical data sizes) widens with it.
- **Predictive intervals.** At a point with n seeds: draw k's prediction plus N(0, s^2 / n +
  tau^2), the 2.5 and 97.5 percentiles over the draws (nats/token).

Losses in nats/token, data sizes in examples. numpy only beyond pandas' frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw

#: Bootstrap draws of each cross-validation fold's refit (its own uncertainty at the left-out
#: points; a variance, so a few dozen draws suffice).
CV_BOOTSTRAP = 16
#: The chi-square quantile that turns the CV points' sum of z^2 into the variance scale.
SCALE_QUANTILE = 0.025
#: The folds whose errors choose the law: extrapolation upwards in data and factor, as the
#: answer extrapolates; the smallest-data-size fold only widens the draws.
CHOICE_FOLDS = ("data_size", "data_size_2", "factor")
#: Predictive intervals: 95%.
LEVEL = 0.95


def seed_variance(points: pd.DataFrame) -> float | None:
    """Pooled sample variance of the seeds' losses (nats/token)^2 over ``points`` (seed means
    with ``loss_std``, the population standard deviation, and ``n_seeds``); None when no point
    has two seeds."""
    if "loss_std" not in points or "n_seeds" not in points:
        return None
    n = pd.to_numeric(points["n_seeds"], errors="coerce").to_numpy(float)
    sd = pd.to_numeric(points["loss_std"], errors="coerce").to_numpy(float)
    ok = np.isfinite(n) & np.isfinite(sd) & (n >= 2)
    if not ok.any():
        return None
    return float(np.sum(n[ok] * sd[ok] ** 2) / np.sum(n[ok] - 1))


def _n_seeds(points: pd.DataFrame) -> np.ndarray:
    if "n_seeds" not in points:
        return np.ones(len(points))
    n = pd.to_numeric(points["n_seeds"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(n) & (n >= 1), n, 1.0)


def folds(X: np.ndarray | None, D: np.ndarray, n_params: int) -> list[tuple[str, np.ndarray]]:
    """The cross-validation folds: ``("data_size", left_out)`` (the largest data size), with
    five data sizes or more ``("data_size_2", left_out)`` (the two largest), for
    two-factor laws ``("factor", left_out)`` (the largest factor value), and
    ``("smallest_data_size", left_out)`` (extrapolation downwards: it widens the draws, see
    :data:`CHOICE_FOLDS`, but does not choose the law); a fold that leaves fewer than
    ``n_params + 1`` points, or only one data size, is skipped."""
    out = [("data_size", D.max() == D)]
    sizes = np.unique(D)
    if sizes.size >= 5:  # a longer horizon too, where the curve has the sizes for it
        out.append(("data_size_2", sizes[-2] <= D))
    if X is not None:
        out.append(("factor", X.max() == X))
    positive = D[D > 0]
    if positive.size:  # the zero-shot points (D = 0) stay in: they anchor the plateau
        out.append(("smallest_data_size", positive.min() == D))
    keep = []
    for name, left in out:
        rest = ~left
        if left.all() or rest.sum() < n_params + 1 or np.unique(D[rest]).size < 2:
            continue
        if X is not None and name == "data_size" and np.unique(X[rest]).size < 2:
            continue
        keep.append((name, left))
    return keep


def _start_grid(est: ScalingLaw) -> dict[str, tuple[float, ...]]:
    """One start: the full fit's optimum (free space)."""
    theta = est.to_free(est.params_)
    return {k: (float(v),) for k, v in zip(est.param_names, theta, strict=True)}


def calibrate(
    est: ScalingLaw,
    fit_pts: pd.DataFrame,
    hold_pts: pd.DataFrame,
    *,
    factor: str | None,
    data: str,
    target: str,
    n_bootstrap: int,
    seed: int = 0,
    fixed: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Cross-validate a fitted law, then give it calibrated bootstrap draws (see the module).

    ``est`` is fitted to ``fit_pts`` (seed means); ``hold_pts`` are the group's held-out points.
    Replaces ``est``'s draws by the widened parametric bootstrap (``n_bootstrap`` draws; none
    when 0). Returns the record fields ``cv_error`` (nats/token, None without a fold),
    ``cv_points`` (each left-out point: ``fold``, factor value, data size, ``observed``,
    ``predicted``), ``noise`` (``seed_sd``, ``lack_of_fit``, ``scale``, ``n_cv``) and
    ``heldout_points`` (factor value, data size, ``n_seeds``, ``observed``, ``predicted``,
    ``lo``, ``hi``: the 95% predictive interval; null without draws)."""
    cls = type(est)
    X = fit_pts[factor].to_numpy(float) if factor else None
    D = fit_pts[data].to_numpy(float)
    y = fit_pts[target].to_numpy(float)
    n = _n_seeds(fit_pts)
    p = len(est.param_names) - len(fixed or {})
    s2 = seed_variance(fit_pts)
    resid = y - est.predict(X, D)
    mse = float(np.sum(resid**2) / max(len(y) - p, 1))
    se2 = np.zeros(len(y)) if s2 is None else s2 / n
    tau2 = max(0.0, mse - float(np.mean(se2)))
    sd = np.sqrt(se2 + tau2)

    def obs_var(frame: pd.DataFrame) -> np.ndarray:
        return (0.0 if s2 is None else s2 / _n_seeds(frame)) + tau2

    cv_points: list[dict[str, Any]] = []
    z2: list[float] = []
    for name, left in folds(X, D, p):
        rest = ~left
        f = cls(huber_delta=est.huber_delta, space=est.space, grid=_start_grid(est), n_polish=1)
        try:
            with np.errstate(all="ignore"):
                f.fit(None if X is None else X[rest], D[rest], y[rest], fixed=fixed)
        except UserError:
            continue
        xl = None if X is None else X[left]
        pred = f.predict(xl, D[left])
        f.bootstrap_noise(sd[rest], CV_BOOTSTRAP, seed=seed)
        draws = f.draw_predictions(xl, D[left])
        var_fit = np.zeros(pred.shape) if draws is None else np.nanvar(draws, axis=0)
        var = var_fit + obs_var(fit_pts[left])
        for j, k in enumerate(np.flatnonzero(left)):
            r = float(y[k] - pred[j])
            if np.isfinite(r):
                z2.append(r * r / var[j] if var[j] > 0 else np.inf)
            cv_points.append(
                {
                    "fold": name,
                    **({factor: float(X[k])} if factor else {}),
                    data: float(D[k]),
                    "observed": float(y[k]),
                    "predicted": float(pred[j]),
                }
            )
    errs = [abs(c["observed"] - c["predicted"]) for c in cv_points if c["fold"] in CHOICE_FOLDS]
    finite = [v for v in z2 if np.isfinite(v)]
    scale = 1.0
    if finite:
        # an upper bound of the mean of z^2 (chi-square with n_cv degrees of freedom at its
        # SCALE_QUANTILE): a handful of CV points understate the error more often than not
        from scipy.stats import chi2

        bound = float(np.sum(finite) / chi2.ppf(SCALE_QUANTILE, len(finite)))
        scale = max(1.0, float(np.sqrt(bound)))
    if n_bootstrap > 0:
        est.bootstrap_noise(sd, n_bootstrap, scale=scale, seed=seed)
    return {
        "cv_error": float(np.mean(errs)) if errs and np.all(np.isfinite(errs)) else None,
        "cv_points": cv_points,
        "noise": {
            "seed_sd": None if s2 is None else float(np.sqrt(s2)),
            "lack_of_fit": float(np.sqrt(tau2)),
            "scale": scale,
            "n_cv": len(cv_points),
        },
        "heldout_points": heldout_points(
            est, hold_pts, factor=factor, data=data, target=target, obs_var=obs_var, seed=seed
        ),
    }


def predictive_interval(
    est: ScalingLaw,
    X: np.ndarray | None,
    D: np.ndarray,
    obs_var: np.ndarray | float,
    *,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(lo, hi) of the predictive distribution at (``X``, ``D``): each bootstrap draw's
    prediction plus Gaussian observation noise of variance ``obs_var`` (nats/token)^2; None
    without draws."""
    draws = est.draw_predictions(X, D)
    if draws is None:
        return None
    rng = np.random.default_rng(seed + 1)
    noise = rng.standard_normal(draws.shape) * np.sqrt(np.broadcast_to(obs_var, draws.shape[1:]))
    q = 50 * (1 - level)
    lo, hi = np.nanpercentile(draws + noise, [q, 100 - q], axis=0)
    return lo, hi


def heldout_points(
    est: ScalingLaw,
    hold_pts: pd.DataFrame,
    *,
    factor: str | None,
    data: str,
    target: str,
    obs_var,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Each held-out point with its observed and predicted loss and 95% predictive interval."""
    if hold_pts.empty:
        return []
    X = hold_pts[factor].to_numpy(float) if factor else None
    D = hold_pts[data].to_numpy(float)
    pred = est.predict(X, D)
    iv = predictive_interval(est, X, D, obs_var(hold_pts), seed=seed)
    n = _n_seeds(hold_pts)
    out = []
    for i in range(len(D)):
        out.append(
            {
                **({factor: float(X[i])} if factor else {}),
                data: float(D[i]),
                "n_seeds": int(n[i]),
                "observed": float(hold_pts[target].iloc[i]),
                "predicted": float(pred[i]),
                "lo": None if iv is None else float(iv[0][i]),
                "hi": None if iv is None else float(iv[1][i]),
            }
        )
    return out


def _cv_se(rec: dict[str, Any]) -> float:
    """The standard error (nats/token) of a record's ``cv_error``: the spread of its |CV
    residuals| over the square root of their number (0 with fewer than two)."""
    errs = [
        abs(c["observed"] - c["predicted"])
        for c in rec.get("cv_points") or []
        if c["fold"] in CHOICE_FOLDS
    ]
    return float(np.std(errs, ddof=1) / np.sqrt(len(errs))) if len(errs) >= 2 else 0.0


def choose(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record to use among one group's fits of different laws, by the one-standard-error
    rule of cross-validation (Breiman et al. 1984): among converged fits with a ``cv_error``,
    the one with the fewest free parameters (ties: the order given) whose ``cv_error`` is
    within one standard error (:func:`_cv_se`) of the lowest; a fit without CV error ranks
    after those with one. Sets ``chosen`` (bool) and ``why`` (a sentence) on every record;
    returns the chosen one (None for no records)."""
    if not records:
        return None

    def key(i_rec):
        i, r = i_rec
        cv = r.get("cv_error")
        return (not r.get("converged", True), cv is None, cv if cv is not None else 0.0, i)

    order = sorted(enumerate(records), key=key)
    lowest = order[0][1]
    best = lowest
    if lowest.get("cv_error") is not None and lowest.get("converged", True):
        bar = lowest["cv_error"] + _cv_se(lowest)
        near = [
            (len(r["params"]), i, r)
            for i, r in order
            if r.get("converged", True) and r.get("cv_error") is not None and r["cv_error"] <= bar
        ]
        best = min(near, key=lambda t: (t[0], t[1]))[2]
    others = ", ".join(
        f"{r['law']} {r['cv_error']:.4f}" if r.get("cv_error") is not None else f"{r['law']} -"
        for _, r in order
        if r is not best
    )
    for r in records:
        r["chosen"] = r is best
    if best.get("cv_error") is None:
        best["why"] = "no cross-validation fold could be fitted; the first law listed is used"
    else:
        what = (
            "lowest cross-validated extrapolation error"
            if best is lowest
            else f"fewest parameters within one standard error of the lowest ({lowest['law']}) "
            "cross-validated extrapolation error"
        )
        best["why"] = (
            f"{what}: {best['cv_error']:.4f} nats/token (leave the largest data size out, "
            "leave the largest factor value out)" + (f"; others: {others}" if others else "")
        )
    for r in records:
        if r is not best:
            r["why"] = f"not chosen: {best['law']} was chosen by cross-validation"
    return best
