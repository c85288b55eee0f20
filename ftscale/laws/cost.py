"""Cost models: how a run's cost (seconds, FLOPs, bytes, parameters) grows with X and D.

A log-linear least-squares fit, cost = exp(c0) * X^c1 * D^c2, per (group, cost column). It is
crude but honest for what recommendations need: the cost of a method at the asked factor value
and data size, not at the sizes that happened to be run.
"""

from __future__ import annotations

import numpy as np

COST_FORM = "exp(c0) * X^c1 * D^c2"


def fit_cost_model(X: np.ndarray | None, D: np.ndarray, cost: np.ndarray) -> dict | None:
    """Least squares on log cost; ``X`` None for one-factor fits. None when fewer than 2 usable
    runs (positive, finite cost)."""
    D = np.asarray(D, dtype=float)
    c = np.asarray(cost, dtype=float)
    ok = np.isfinite(c) & (c > 0)
    if ok.sum() < 2:
        return None
    logs = [
        np.log(np.asarray(X, dtype=float)[ok]) if X is not None else np.zeros(ok.sum()),
        np.log(D[ok]),
    ]
    # A factor that never varies has no identifiable exponent: leave it out (exponent 0).
    varying = [j for j, col in enumerate(logs) if np.ptp(col) > 0]
    M = np.stack([np.ones(ok.sum())] + [logs[j] for j in varying], axis=1)
    sol, *_ = np.linalg.lstsq(M, np.log(c[ok]), rcond=None)
    coef = [float(sol[0]), 0.0, 0.0]
    for k, j in enumerate(varying):
        coef[1 + j] = float(sol[1 + k])
    resid = np.log(c[ok]) - M @ sol
    return {
        "form": COST_FORM,
        "coef": coef,
        "n": int(ok.sum()),
        "rms_log_error": float(np.sqrt(np.mean(resid**2))),
    }


def cost_error(model: dict) -> float | None:
    """The fit error of a cost model: the RMS of its log residuals (natural log; 0.1 means the
    runs' costs scatter about 10% around the model), None for a model from a fits file
    written before it was recorded."""
    v = model.get("rms_log_error")
    return None if v is None else float(v)


def data_size_at_cost(model: dict, x: float | None, budget: float) -> float | None:
    """The data size D (examples) whose predicted cost at factor value ``x`` equals ``budget``
    (in the column's unit: FLOPs, seconds, ...): D = (budget / (exp(c0) X^c1))^(1/c2). None
    when the cost does not grow with D (c2 <= 0: no budget picks a data size)."""
    c0, c1, c2 = model["coef"]
    if not c2 > 0 or not budget > 0:
        return None
    lx = np.log(x) if x is not None and c1 != 0 else 0.0
    with np.errstate(over="ignore"):
        return float(np.exp((np.log(budget) - c0 - c1 * lx) / c2))


def log_data_map(model: dict, x: float | None) -> tuple[float, float] | None:
    """(a, b) with log D = a + b log(budget): :func:`data_size_at_cost` in log space, for
    searches over a budget axis; None when c2 <= 0."""
    c0, c1, c2 = model["coef"]
    if not c2 > 0:
        return None
    lx = np.log(x) if x is not None and c1 != 0 else 0.0
    return float(-(c0 + c1 * lx) / c2), float(1.0 / c2)


def predict_cost(model: dict, x: float | None, d: float) -> float:
    """Cost at factor value ``x`` and data size ``d`` (examples), in the column's unit."""
    c0, c1, c2 = model["coef"]
    lx = np.log(x) if x is not None and c1 != 0 else 0.0
    return float(np.exp(c0 + c1 * lx + c2 * np.log(d)))
