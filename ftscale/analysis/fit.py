"""The one law-fitting step: a group's seed-averaged points -> a fitted law's record.

``ftscale fit`` (:func:`ftscale.lawfit.fit_frame`) and ``ftscale study fit``
(:func:`ftscale.analysis.study.fit_study`) both end here, so both follow one policy:

- Points are seed means (the paper averages 3 runs per point); held-out points are scored as
  Delta_h and never fitted.
- Too few points for a law's free parameters, or a fit the estimator refuses, is not an error
  for the group: the fit is skipped and the reason becomes a note. (``ftscale fit``, whose
  only output is a fits file, then refuses a table where no group could be fitted; a study's
  document still goes to its report, which says why.)
- A fit that does not converge is kept (``"converged": false`` in its record) and its warning
  becomes a note; no warning reaches the terminal.
- Cost models (cost = exp(c0) X^c1 D^c2) are fitted to every point of the group, held out
  too: a held-out point is one the law must predict, but its cost is a measurement like any other.
- Every record carries the measured ranges of the group's points, held out too
  (``data_range``, ``factor_range``, ``data_range_by_factor``: what ``critical`` and
  ``recommend`` judge extrapolation by) and its law health (``health``:
  :func:`ftscale.analysis.health.law_health`, from the held-out points' ``loss_std`` and
  ``n_seeds`` where the points carry them and the spread of the bootstrap predictions there).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ftscale.analysis.calibrate import calibrate
from ftscale.analysis.covariates import covariate_map
from ftscale.analysis.health import law_health, ranges_of
from ftscale.errors import ConvergenceWarning, UserError
from ftscale.laws.cost import fit_cost_model
from ftscale.laws.io import FORMAT_VERSION, fit_record
from ftscale.laws.registry import get_law
from ftscale.schema import COST_COLUMNS

__all__ = ["FORMAT_VERSION", "FitOptions", "cost_models", "fit_group", "fits_document"]


@dataclass(frozen=True)
class FitOptions:
    """How every law is fitted: loss ``space`` ("linear" | "log"), the Huber loss's
    ``huber_delta`` (nats/token), ``bootstrap`` refits for intervals, their ``seed``;
    ``calibrate``: cross-validate the law and draw its bootstrap from the calibrated noise
    model (:mod:`ftscale.analysis.calibrate`) instead of resampling the points."""

    space: str = "linear"
    huber_delta: float = 1e-3
    bootstrap: int = 0
    seed: int = 0
    calibrate: bool = True


def cost_models(points: pd.DataFrame, factor: str | None, data: str) -> dict[str, dict]:
    """Cost column -> fitted cost model over ``points`` (columns without 2 usable values: none)."""
    X = points[factor].to_numpy(float) if factor else None
    out = {}
    for col in COST_COLUMNS:
        if col in points.columns:
            values = pd.to_numeric(points[col], errors="coerce").to_numpy(float)
            model = fit_cost_model(X, points[data].to_numpy(float), values)
            if model is not None:
                out[col] = model
    return out


def rising_grid(cls: Any, D: np.ndarray, y: np.ndarray) -> dict[str, tuple[float, ...]] | None:
    """Start values for a target that grows with data (``forgetting`` does: more finetuning,
    more drift): the form's ``beta`` starts plus their negatives, where the form's box allows a
    negative ``beta``, and the scales (``A``, ``E``) also started small (the log of the first
    nonzero target, and e^-8); None (the form's default grid) for a target that falls with data, as a
    loss does. Rising: a positive correlation of the target with log data size."""
    if "beta" not in cls.default_grid or len(y) < 2 or np.ptp(y) == 0 or np.ptp(D) == 0:
        return None
    lo = cls.bounds.get("beta", cls._EXPONENT_BOUNDS)[0]
    if lo >= 0 or not np.corrcoef(np.log(D), y)[0, 1] > 0:
        return None
    starts = cls.default_grid["beta"]
    grid = {"beta": tuple(starts) + tuple(-b for b in starts if 0 < b <= -lo)}
    # a rising target is often small (forgetting: hundredths of a nat), so small scales too
    small = tuple(float(v) for v in np.log(np.abs(y[y != 0])).round()[:1]) + (-8.0,)
    for k in ("A", "E"):
        if k in cls.default_grid:
            grid[k] = tuple(dict.fromkeys(tuple(cls.default_grid[k]) + small))
    return grid


def fit_group(
    law: str,
    points: pd.DataFrame,
    held: np.ndarray,
    *,
    group: dict[str, Any],
    factor: str | None,
    data: str = "data_size",
    target: str = "loss",
    options: FitOptions = FitOptions(),
    fixed: dict[str, float] | None = None,
    label: str = "",
) -> tuple[dict[str, Any] | None, list[str]]:
    """Fit ``law`` to the seed-averaged ``points`` of one group, ``held`` (a boolean mask over
    them) held out. ``factor`` is None for one-factor laws. Returns (the fit record or None,
    notes); see the module's policy."""
    cls = get_law(law)
    held = np.asarray(held, dtype=bool)
    fit_pts, hold_pts = points[~held], points[held]
    label = label or ", ".join(f"{k}={v}" for k, v in group.items()) or "all rows"
    n_params = len(cls.param_names) - len(fixed or {})
    if len(fit_pts) < n_params:
        why = (
            f"{len(fit_pts)} points for the {n_params} parameters of the {law} law "
            "(need at least as many points as parameters)"
        )
        return None, [f"{label}: not fitted ({why})"]
    hyper: dict[str, Any] = {}
    if cls.covariate is not None:
        try:
            hyper["covariate_map"] = covariate_map(
                cls, points, factor=factor, data=data, target=target
            )
        except UserError as exc:
            return None, [f"{label}: not fitted ({exc})"]
    est = cls(
        **hyper,
        huber_delta=options.huber_delta,
        space=options.space,
        grid=rising_grid(cls, fit_pts[data].to_numpy(float), fit_pts[target].to_numpy(float)),
        n_bootstrap=0 if options.calibrate else options.bootstrap,
        seed=options.seed,
    )

    def xs(frame: pd.DataFrame) -> np.ndarray | None:
        return frame[factor].to_numpy(float) if factor else None

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            est.fit(
                xs(fit_pts),
                fit_pts[data].to_numpy(float),
                fit_pts[target].to_numpy(float),
                holdout=(
                    xs(hold_pts),
                    hold_pts[data].to_numpy(float),
                    hold_pts[target].to_numpy(float),
                ),
                fixed=fixed,
            )
    except UserError as exc:
        return None, [f"{label}: not fitted ({exc})"]
    notes = [f"{label}: {w.message}" for w in caught if issubclass(w.category, ConvergenceWarning)]
    extra: dict[str, Any] = {}
    if options.calibrate:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            extra = calibrate(
                est,
                fit_pts,
                hold_pts,
                factor=factor,
                data=data,
                target=target,
                n_bootstrap=options.bootstrap,
                seed=options.seed,
                fixed=fixed,
            )
    record = fit_record(
        est,
        group=group,
        factor=factor,
        data=data,
        target=target,
        cost_models=cost_models(points, factor, data),
    )
    record.update(extra)
    record.update(ranges_of(points[data].to_numpy(float), xs(points)))
    record["health"] = law_health(
        record["delta_e"],
        record["delta_h"],
        _seed_stats(hold_pts),
        _draw_sd(est, xs(hold_pts), hold_pts[data].to_numpy(float)),
    )
    return record, notes


def _draw_sd(est, X: np.ndarray | None, D: np.ndarray) -> list[float] | None:
    """The spread (nats/token) of the bootstrap draws' predictions at each point: half the
    width of their 16-84% percentile interval, a standard deviation that a few wild draws of a
    small bootstrap do not dominate; None without draws (or points)."""
    draws = est.bootstrap_params_
    if draws is None or len(draws) < 2 or D.size == 0:
        return None
    C = est.covariate_of(X)
    with np.errstate(all="ignore"):
        preds = np.stack(
            [est.predict_with(dict(zip(est.param_names, row, strict=True)), C, D) for row in draws]
        )
    lo, hi = np.nanpercentile(preds, [16, 84], axis=0)
    return [float(v) for v in (hi - lo) / 2]


def _seed_stats(points: pd.DataFrame) -> list[tuple[float | None, int | None]]:
    """(loss_std, n_seeds) of each point; (None, None) where the points do not carry them."""
    if "loss_std" not in points or "n_seeds" not in points:
        return [(None, None)] * len(points)
    return [
        (None if pd.isna(s) else float(s), None if pd.isna(n) else int(n))
        for s, n in zip(points["loss_std"], points["n_seeds"], strict=True)
    ]


def fits_document(fits: list[dict[str, Any]], notes: list[str], **extra: Any) -> dict[str, Any]:
    """The fits document every fitting command writes: ``{"ftscale_fits", ...extra, "fits",
    "notes"}``."""
    return {"ftscale_fits": FORMAT_VERSION, **extra, "fits": fits, "notes": notes}
