"""Recommendation: which method for a factor value and a data size, and at what cost."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.laws.base import ScalingLaw
from ftscale.laws.cost import predict_cost
from ftscale.laws.critical import DEFAULT_RANGE

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

    Returns ``{"ranking": [{"method", "predicted_loss", "interval", "cost"}], "best",
    "flips", "flip_data_size", "cheapest_within_tolerance"}``. ``interval`` is the bootstrap
    percentile interval at ``level`` (None without bootstrap samples). ``flip_data_size`` is the
    ranking change nearest to ``data_size`` in log distance. With ``cost_models`` (method ->
    cost column -> model), the cheapest method whose predicted loss is within ``tolerance``
    (nats/token) of the best is named with its predicted cost in column ``cost`` (default: the
    first of :data:`COST_PREFERENCE` every method has).
    """
    rows = []
    for m, law in laws.items():
        pred = float(law.predict(x, data_size))
        iv = law.predict_interval(x, data_size, level)
        rows.append(
            {
                "method": m,
                "predicted_loss": pred,
                "interval": None if iv is None else [float(iv[0]), float(iv[1])],
                "cost": {},
            }
        )
    rows.sort(key=lambda r: r["predicted_loss"])
    flips = ranking_flips(laws, x, lo, hi)
    nearest = min(flips, key=lambda f: abs(np.log(f["data_size"] / data_size)), default=None)
    out: dict[str, Any] = {
        "ranking": rows,
        "best": rows[0]["method"],
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
