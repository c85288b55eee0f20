"""Recommendation: which method for a factor value and a data size, and at what cost."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.laws.base import ScalingLaw
from ftscale.laws.cost import predict_cost
from ftscale.laws.critical import DEFAULT_RANGE, _draw_preds

#: Cost columns in order of preference when the user does not name one.
COST_PREFERENCE = ("train_seconds", "flops", "peak_mem_bytes", "trainable_params")


def ranking_flips(
    laws: dict[str, ScalingLaw],
    x: float | None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = 2001,
) -> list[dict[str, Any]]:
    """Data sizes (examples) in [lo, hi] where the best method changes, with the methods before
    and after: ``[{"data_size", "from", "to"}]``. Bisection on log D refines each change."""
    names = list(laws)
    grid = np.geomspace(lo, hi, n_grid)

    def best_at(dd: np.ndarray) -> np.ndarray:
        return np.argmin(np.stack([laws[m].predict(x, dd) for m in names]), axis=0)

    b = best_at(grid)
    out = []
    for i in np.flatnonzero(b[1:] != b[:-1]):
        a, c = np.log(grid[i]), np.log(grid[i + 1])
        for _ in range(60):
            mid = 0.5 * (a + c)
            if best_at(np.array([np.exp(mid)]))[0] == b[i]:
                a = mid
            else:
                c = mid
        out.append(
            {"data_size": float(np.exp(0.5 * (a + c))), "from": names[b[i]], "to": names[b[i + 1]]}
        )
    return out


def _draw_theta(law: ScalingLaw, draws: np.ndarray) -> np.ndarray:
    """Bootstrap draws (R, P) of public parameters -> free vectors (R, P); a non-positive scale
    gives NaN (that draw then predicts nothing) instead of an error."""
    cols = []
    with np.errstate(all="ignore"):
        for k, name in enumerate(law.param_names):
            v = draws[:, k]
            cols.append(np.log(np.where(v > 0, v, np.nan)) if name in law.log_params else v)
    return np.stack(cols, axis=1)


def p_best(
    laws: dict[str, ScalingLaw], x: float | None, data_size: float
) -> tuple[dict[str, float] | None, int | None]:
    """Probability that each method is best at factor ``x`` and ``data_size`` (examples), from
    the laws' bootstrap draws: draw k of every law is taken together (as
    :func:`ftscale.laws.critical.bootstrap_crossings` pairs them), and a method's probability
    is the share of draw indices k at which its predicted loss is the lowest. Draw indices
    where any law predicts no finite loss are left out. Returns (method -> probability, the
    number of draw indices used), or (None, None) when a law has no draws."""
    draws = [law.bootstrap_params_ for law in laws.values()]
    if not laws or any(d is None or len(d) == 0 for d in draws):
        return None, None
    r = min(len(d) for d in draws)
    logd = np.array([np.log(float(data_size))])
    preds = np.stack(
        [
            _draw_preds(law, _draw_theta(law, np.asarray(d[:r], dtype=float)), x, logd)[:, 0]
            for law, d in zip(laws.values(), draws, strict=True)
        ]
    )  # (methods, R)
    ok = np.isfinite(preds).all(axis=0)
    if not ok.any():
        return None, None
    wins = np.bincount(np.argmin(preds[:, ok], axis=0), minlength=len(laws))
    n = int(ok.sum())
    return {m: float(w / n) for m, w in zip(laws, wins, strict=True)}, n


def recommend(
    laws: dict[str, ScalingLaw],
    x: float | None,
    data_size: float,
    *,
    cost_models: dict[str, dict[str, dict]] | None = None,
    cost: str | None = None,
    tolerance: float = 0.01,
    level: float = 0.95,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> dict[str, Any]:
    """Rank methods (name -> fitted law) by predicted loss at factor ``x`` and ``data_size``.

    Returns ``{"ranking": [{"method", "predicted_loss", "interval", "p_best", "cost"}], "best",
    "p_best", "n_draws", "flips", "flip_data_size", "cheapest_within_tolerance"}``.
    ``interval`` is the bootstrap percentile interval at ``level`` (None without bootstrap
    samples); ``p_best`` the probability that the method is best (:func:`p_best`; None without
    draws), top-level that of ``best`` (the lowest predicted loss), over ``n_draws`` draws. ``flip_data_size`` is the
    ranking change nearest to ``data_size`` in log distance. With ``cost_models`` (method ->
    cost column -> model), the cheapest method whose predicted loss is within ``tolerance``
    (nats/token) of the best is named with its predicted cost in column ``cost`` (default: the
    first of :data:`COST_PREFERENCE` every method has).
    """
    probs, n_draws = p_best(laws, x, data_size)
    rows = []
    for m, law in laws.items():
        pred = float(law.predict(x, data_size))
        iv = law.predict_interval(x, data_size, level)
        rows.append(
            {
                "method": m,
                "predicted_loss": pred,
                "interval": None if iv is None else [float(iv[0]), float(iv[1])],
                "p_best": None if probs is None else probs[m],
                "cost": {},
            }
        )
    rows.sort(key=lambda r: r["predicted_loss"])
    flips = ranking_flips(laws, x, lo, hi)
    nearest = min(flips, key=lambda f: abs(np.log(f["data_size"] / data_size)), default=None)
    out: dict[str, Any] = {
        "ranking": rows,
        "best": rows[0]["method"],
        "p_best": rows[0]["p_best"],
        "n_draws": n_draws,
        "flips": flips,
        "flip_range": [float(lo), float(hi)],
        "flip_data_size": None if nearest is None else nearest["data_size"],
        "tolerance": tolerance,
        "cost_column": None,
        "cheapest_within_tolerance": None,
    }
    cost_models = cost_models or {}
    common = set.intersection(*(set(cost_models.get(m, {})) for m in laws)) if laws else set()
    column = cost if cost is not None else next((c for c in COST_PREFERENCE if c in common), None)
    if column is not None and column in common:
        for r in rows:
            for c, model in cost_models[r["method"]].items():
                r["cost"][c] = predict_cost(model, x, data_size)
        best_loss = rows[0]["predicted_loss"]
        ok = [r for r in rows if r["predicted_loss"] <= best_loss + tolerance]
        pick = min(ok, key=lambda r: r["cost"][column])
        out["cost_column"] = column
        out["cheapest_within_tolerance"] = {
            "method": pick["method"],
            "predicted_loss": pick["predicted_loss"],
            "cost": pick["cost"][column],
            "loss_gap": pick["predicted_loss"] - best_loss,
        }
    return out
