"""Law choice by held-out error and predictive intervals that cover.

One fitted law of a group (:func:`ftscale.analysis.fit.fit_group`) is calibrated here:

- **Noise model.** A point is the mean of its seeds' losses. The seed variance s^2 is pooled
  over the group's fitted points (sum of n_i * pop_var_i over sum of (n_i - 1), points with at
  least two seeds); a point's mean then scatters with s^2 / n_i. What the law leaves beyond that
  is its lack of fit tau^2 = max(0, RSS / (n - p) - mean(s^2 / n_i)) (without seed information:
  tau^2 = RSS / (n - p), all of the residual). A point's noise sd_i = sqrt(s^2 / n_i + tau^2).
- **Cross-validation that respects extrapolation.** Folds of the fitted points: leave the
  largest data size out (with five sizes or more, also the two largest), leave the largest
  factor value out, and leave the smallest data size out (a fold that would leave fewer points
  than the law's parameters + 1 is skipped). The law is refitted to the rest from the form's
  own grid of starts, as the full fit is (not from the full fit's optimum: where the fold's
  points leave a direction of the parameters free, a refit started there stays there and
  "predicts" the points the full fit had seen), and predicts the left-out points; the delta
  method gives the refit's own variance there. Where the fold's points leave a direction
  free (the additive law on two model sizes: A, alpha and E trade off), many starts reach
  the same objective (within :data:`ftscale.laws.base.TIE_RTOL`) and extrapolate differently; which one L-BFGS
  reports first is an accident, so a point's error is the mean |observed - predicted| over
  all those equally good refits (``error``; on the demo's LoRA the additive law's factor
  fold: 0.015 for the first refit, 0.06 over the 20 tied ones). ``cv_error`` is the mean
  error over the points left out by the upward folds (nats/token): the error of an
  extrapolation like the one the answer makes. The law with the lowest one is chosen
  (:func:`choose`); the third fold (crossings below the runs) only widens the draws.
- **Extrapolation widening.** z_j^2 = r_j^2 / (the refit's variance at j + sd_j^2) says how
  much bigger the CV errors are than the uncertainty the fit claims; ``scale`` = max(1,
  sqrt(sum z^2 / chi2_0.025(n_cv))) (an upper bound of the mean z^2) multiplies the noise of the
  final parametric bootstrap. A law that extrapolated badly in CV, in any direction, therefore
  has wide draws, and everything taken from them (intervals, P(best), critical data sizes)
  widens with it.
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

#: L-BFGS iterations of a cross-validation fold's refit (the full fit's 150: a fold's
#: predictions at the points it leaves out, not its optimum to the last digit, are used).
CV_MAX_ITER = 100
#: CV errors within this fraction of the lowest are a tie in law choice (the fewer parameters
#: win): a few dozen CV points do not tell 2% apart (a pure power curve: multiplicative 0.00481,
#: multiplicative_rectified 0.00472 nats/token).
CV_TIE = 0.05
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


def _linear_var(
    est: ScalingLaw,
    X: np.ndarray | None,
    D: np.ndarray,
    sd: np.ndarray,
    X_new: np.ndarray | None,
    D_new: np.ndarray,
) -> np.ndarray:
    """The variance (nats/token)^2 of a fitted law's prediction at (``X_new``, ``D_new``)
    from its fit to points (``X``, ``D``) with noise ``sd`` (nats/token) each, to first order:
    g' (J' W J)^+ g with J the gradient of the predictions in the free parameters at the fitted
    points, W = 1 / sd^2 and g the gradient at the new points (the delta method; a direction
    the points do not pin down adds nothing, as the pseudo-inverse drops it)."""
    free = np.array([k not in est.fixed_ for k in est.param_names])
    theta = est.to_free(est.params_)[None]

    def grad(Xv: np.ndarray | None, Dv: np.ndarray) -> np.ndarray:
        x, d = est._logs(Xv, Dv)
        with np.errstate(all="ignore"):
            lp, g = est.log_pred(theta, x, d)
        return (np.exp(lp[0])[:, None] * g[0])[:, free]

    J, G = grad(X, D), grad(X_new, D_new)
    w = 1.0 / np.maximum(sd, 1e-12) ** 2
    if not (np.isfinite(J).all() and np.isfinite(G).all()):
        return np.full(len(D_new), np.inf)
    cov = np.linalg.pinv(J.T @ (w[:, None] * J), rcond=1e-10)
    return np.maximum(np.einsum("ip,pq,iq->i", G, cov, G), 0.0)


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
    ``predicted`` (the refit's), ``error`` (the mean absolute error over the equally good
    refits), ``n_tied`` (their number)), ``noise`` (``seed_sd``, ``lack_of_fit``, ``scale``, ``n_cv``) and
    ``heldout_points`` (factor value, data size, ``n_seeds``, ``observed``, ``predicted``,
    ``lo``, ``hi``: the 95% predictive interval; null without draws)."""
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
        # from the form's own grid of starts, as the full fit: a refit started at the full
        # fit's optimum stays there wherever the fold's points leave a direction free (the
        # additive law on two factor values), and "predicts" the points it had seen
        f = est.clone().set_params(n_polish=1, max_iter=CV_MAX_ITER, n_bootstrap=0)
        try:
            with np.errstate(all="ignore"):
                f.fit(None if X is None else X[rest], D[rest], y[rest], fixed=fixed)
        except UserError:
            continue
        xl = None if X is None else X[left]
        pred = f.predict(xl, D[left])
        tied = tied_predictions(f, xl, D[left])
        var_fit = _linear_var(f, None if X is None else X[rest], D[rest], sd[rest], xl, D[left])
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
                    # equally good refits may extrapolate differently: the error of any one
                    "error": float(np.mean(np.abs(y[k] - np.append(tied[:, j], pred[j])))),
                    "n_tied": int(tied.shape[0]) + 1,
                }
            )
    errs = [cv_error_of(c) for c in cv_points if c["fold"] in CHOICE_FOLDS]
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


def tied_predictions(est: ScalingLaw, X: np.ndarray | None, D: np.ndarray) -> np.ndarray:
    """The predictions (nats/token; rows: refits, columns: points) at (``X``, ``D``) of a
    fitted law's other converged starts that tie its best objective (``tied_theta_``: a flat
    valley, where the fitted points leave a direction of the parameters free); no rows when
    the fit is determined, non-finite predictions dropped."""
    theta = getattr(est, "tied_theta_", None)
    if theta is None or len(theta) == 0:
        return np.empty((0, len(D)))
    x, d = est._logs(X, D)
    with np.errstate(all="ignore"):
        lp, _ = est.log_pred(np.asarray(theta, dtype=float), x, d)
    preds = np.exp(lp)
    return preds[np.isfinite(preds).all(axis=1)]


def cv_error_of(point: dict[str, Any]) -> float:
    """A CV point's absolute error (nats/token): the mean over the fold's equally good refits
    (``error``) where the point records it, else |observed - predicted|."""
    if point.get("error") is not None:
        return float(point["error"])
    return abs(point["observed"] - point["predicted"])


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


def choose(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record to use among one group's fits of different laws: among converged fits with
    a ``cv_error``, the lowest (a tie, within :data:`CV_TIE` of the lowest: the fewest free
    parameters, then the order given); a fit without CV error ranks after those with one. Sets ``chosen`` (bool) and
    ``why`` (a sentence) on every record; returns the chosen one (None for no records).

    Not the one-standard-error rule (the fewest parameters within one standard error of the
    lowest): on the simulated studies of benchmarks/bench_calibration.py it preferred the
    simpler law that put the crossing in the wrong place."""
    if not records:
        return None

    def key(i_rec):
        i, r = i_rec
        cv = r.get("cv_error")
        cv_key = cv if cv is not None else 0.0
        return (not r.get("converged", True), cv is None, cv_key, len(r.get("params", ())), i)

    order = sorted(enumerate(records), key=key)
    best = order[0][1]
    if best.get("cv_error") is not None and best.get("converged", True):
        # CV errors within CV_TIE of the lowest are a tie: the fewest parameters
        near = [
            (len(r.get("params", ())), i, r)
            for i, r in order
            if r.get("converged", True)
            and r.get("cv_error") is not None
            and r["cv_error"] <= best["cv_error"] * (1 + CV_TIE)
        ]
        best = min(near, key=lambda t: (t[0], t[1]))[2]
    others = ", ".join(
        f"{r['law']} {r['cv_error']:.4f}" if r.get("cv_error") is not None else f"{r['law']} -"
        for _, r in order
        if r is not best
    )
    for r in records:
        r["chosen"] = r is best
    set_weights(records)
    if best.get("cv_error") is None:
        best["why"] = "no cross-validation fold could be fitted; the first law listed is used"
    else:
        lowest = order[0][1]
        what = (
            "lowest cross-validated extrapolation error"
            if best is lowest
            else f"fewest parameters within {CV_TIE:.0%} of the lowest ({lowest['law']}) "
            "cross-validated extrapolation error"
        )
        best["why"] = (
            f"{what}: "
            f"{best['cv_error']:.4f} nats/token (leave the largest data size out, "
            "leave the largest factor value out)" + (f"; others: {others}" if others else "")
        )
    for r in records:
        if r is not best:
            r["why"] = f"not chosen: {best['law']} was chosen by cross-validation"
    return best


def set_weights(records: list[dict[str, Any]]) -> None:
    """Set ``weight`` on one group's records: the share of its draws that each law brings to
    the group's pooled draws (:class:`ftscale.laws.mixture.LawMixture`), by inverse
    cross-validated mean squared error (Bates and Granger's forecast combination), over the
    converged fits with CV points of the choice folds; 0 for the others."""
    inv = []
    for r in records:
        errs = [cv_error_of(c) ** 2 for c in r.get("cv_points") or [] if c["fold"] in CHOICE_FOLDS]
        ok = r.get("converged", True) and errs and np.all(np.isfinite(errs))
        inv.append(1.0 / max(float(np.mean(errs)), 1e-12) if ok else 0.0)
    total = sum(inv)
    for r, v in zip(records, inv, strict=True):
        r["weight"] = v / total if total > 0 else float(r.get("chosen", False))
