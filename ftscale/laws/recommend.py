"""Recommendation: which method for a factor value and a data size, and at what cost."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.laws.base import ScalingLaw
from ftscale.laws.cost import COST_FORM, cost_error, data_size_at_cost, predict_cost
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
    return _p_best_at(laws, x, {m: data_size for m in laws})


def _paired_draw_preds(
    laws: dict[str, ScalingLaw], x: float | None, sizes: dict[str, float]
) -> np.ndarray | None:
    """Predicted losses (methods, R) of draw k of every law, each method at its own data size
    ``sizes[method]`` (examples); None when a law has no draws."""
    draws = [law.bootstrap_params_ for law in laws.values()]
    if not laws or any(d is None or len(d) == 0 for d in draws):
        return None
    r = min(len(d) for d in draws)
    return np.stack(
        [
            _draw_preds(
                law,
                _draw_theta(law, np.asarray(d[:r], dtype=float)),
                x,
                np.array([np.log(float(sizes[m]))]),
            )[:, 0]
            for (m, law), d in zip(laws.items(), draws, strict=True)
        ]
    )


def _p_best_at(
    laws: dict[str, ScalingLaw], x: float | None, sizes: dict[str, float]
) -> tuple[dict[str, float] | None, int | None]:
    """:func:`p_best` with each method at its own data size (examples)."""
    preds = _paired_draw_preds(laws, x, sizes)
    got = None if preds is None else p_best_of(preds)
    if got is None:
        return None, None
    probs, n = got
    return {m: float(v) for m, v in zip(laws, probs, strict=True)}, n


def p_best_of(preds: np.ndarray) -> tuple[np.ndarray, int] | None:
    """P(best), the one place it is computed: the probability that each of M candidates
    (methods, PET sizes) has the lowest loss, from R paired draws ``preds`` (M, R; nats/token;
    draw k of every candidate taken together): the share of draws in which each is lowest.
    Draws where a candidate predicts no finite loss are left out. Returns (probabilities (M,),
    the number of draws used), or None when no draw is finite."""
    preds = np.asarray(preds, dtype=float)
    ok = np.isfinite(preds).all(axis=0)
    n = int(ok.sum())
    if n == 0:
        return None
    return np.bincount(np.argmin(preds[:, ok], axis=0), minlength=preds.shape[0]) / n, n


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


def cost_model_summary(column: str, model: dict) -> dict[str, Any]:
    """A cost model as reported: ``{"column", "form", "params": {"c0", "c1", "c2"}, "error"
    (RMS of the log residuals of its fit: :func:`ftscale.laws.cost.cost_error`), "n"}``."""
    c0, c1, c2 = model["coef"]
    return {
        "column": column,
        "form": model.get("form", COST_FORM),
        "params": {"c0": float(c0), "c1": float(c1), "c2": float(c2)},
        "error": cost_error(model),
        "n": model.get("n"),
    }


def compute_matched(
    laws: dict[str, ScalingLaw],
    x: float | None,
    budget: float,
    cost_models: dict[str, dict],
    column: str,
    *,
    level: float = 0.95,
) -> dict[str, Any]:
    """Rank methods by predicted loss at one compute budget instead of one data size.

    Each method is trained on the data size its cost model (``cost_models``: method -> model
    of ``column``) affords at factor value ``x``: D = (budget / (exp(c0) X^c1))^(1/c2)
    examples (:func:`ftscale.laws.cost.data_size_at_cost`), and its law predicts the loss
    (nats/token) there. ``budget`` is in the column's unit (FLOPs for ``flops``, seconds for
    ``train_seconds``).

    Returns ``{"budget", "cost_column", "ranking": [{"method", "data_size_at_budget",
    "predicted_loss", "interval", "p_best", "cost_model"}], "best", "p_best", "n_draws"}``:
    ``interval`` the bootstrap percentile interval at ``level`` (None without draws),
    ``p_best`` the share of paired bootstrap draws (draw k of every law, each at its own
    data size) in which the method predicts the lowest loss, ``cost_model``
    :func:`cost_model_summary` (its ``error`` is the spread of the runs' costs about the
    model, which the data size inherits: a log error e in cost is e / c2 in log D).
    """
    from ftscale.errors import UserError

    sizes: dict[str, float] = {}
    for m in laws:
        d = data_size_at_cost(cost_models[m], x, budget)
        if d is None or not np.isfinite(d) or d <= 0:
            raise UserError(
                f"method {m!r}: its {column} cost model does not grow with data size, so no "
                "budget picks a data size"
            )
        sizes[m] = d
    probs, n_draws = _p_best_at(laws, x, sizes)
    rows = []
    for m, law in laws.items():
        iv = law.predict_interval(x, sizes[m], level)
        rows.append(
            {
                "method": m,
                "data_size_at_budget": sizes[m],
                "predicted_loss": float(law.predict(x, sizes[m])),
                "interval": None if iv is None else [float(iv[0]), float(iv[1])],
                "p_best": None if probs is None else probs[m],
                "cost_model": cost_model_summary(column, cost_models[m]),
            }
        )
    rows.sort(key=lambda r: r["predicted_loss"])
    return {
        "budget": float(budget),
        "cost_column": column,
        "ranking": rows,
        "best": rows[0]["method"],
        "p_best": rows[0]["p_best"],
        "n_draws": n_draws,
    }


def pet_size_choice(
    law: ScalingLaw,
    sizes: list[float],
    data_size: float,
    *,
    tolerance: float = 0.01,
    level: float = 0.95,
) -> dict[str, Any]:
    """Which PET size (LoRA rank, prompt length, ...: the law's factor) to use with
    ``data_size`` examples, among the candidate ``sizes`` (the sizes that were run).

    Returns ``{"best", "best_loss", "smallest_within_tolerance", "predicted_loss",
    "interval", "loss_gap", "loss_gap_interval", "p_within_tolerance", "n_draws",
    "candidates": [{"pet_size", "predicted_loss", "interval", "p_best"}]}``: ``best`` the size
    with the lowest predicted loss (nats/token) at ``data_size``; ``smallest_within_tolerance``
    the smallest size whose predicted loss is within ``tolerance`` (nats/token) of it, with its
    ``predicted_loss`` and bootstrap ``interval`` at ``level``; ``loss_gap`` its loss minus
    the best's, with the percentile interval of that gap over the bootstrap draws;
    ``p_within_tolerance`` the share of draws in which it is within ``tolerance`` of that
    draw's best candidate; ``p_best`` of a candidate the share of draws in which it is best.
    Draw-based fields are None without bootstrap draws.
    """
    cand = sorted({float(s) for s in sizes})
    preds = np.array([float(law.predict(r, data_size)) for r in cand])
    i_best = int(np.argmin(preds))
    i_small = next(i for i, p in enumerate(preds) if p <= preds[i_best] + tolerance)
    draws = law.bootstrap_params_
    dp = got = None
    if draws is not None and len(draws):
        theta = _draw_theta(law, np.asarray(draws, dtype=float))
        logd = np.array([np.log(float(data_size))])
        dp = np.stack([_draw_preds(law, theta, r, logd)[:, 0] for r in cand])  # (C, R)
        dp = dp[:, np.isfinite(dp).all(axis=0)]
        got = p_best_of(dp)
        if got is None:
            dp = None
    q = 50 * (1 - level)
    p_best_c = None
    gap_iv = p_within = None
    if dp is not None:
        p_best_c = got[0]
        gap = dp[i_small] - dp[i_best]
        gap_iv = [float(v) for v in np.percentile(gap, [q, 100 - q])]
        p_within = float(np.mean(dp[i_small] <= dp.min(axis=0) + tolerance))
    rows = []
    for i, r in enumerate(cand):
        iv = law.predict_interval(r, data_size, level)
        rows.append(
            {
                "pet_size": r,
                "predicted_loss": float(preds[i]),
                "interval": None if iv is None else [float(iv[0]), float(iv[1])],
                "p_best": None if p_best_c is None else float(p_best_c[i]),
            }
        )
    return {
        "best": cand[i_best],
        "best_loss": float(preds[i_best]),
        "smallest_within_tolerance": cand[i_small],
        "predicted_loss": float(preds[i_small]),
        "interval": rows[i_small]["interval"],
        "loss_gap": float(preds[i_small] - preds[i_best]),
        "loss_gap_interval": gap_iv,
        "p_within_tolerance": p_within,
        "n_draws": None if dp is None else int(dp.shape[1]),
        "tolerance": float(tolerance),
        "candidates": rows,
    }
