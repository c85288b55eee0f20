"""Method comparisons over fit records: critical data sizes and recommendations per context.

Fit records with a ``method`` in their group (a fits file from ``ftscale fit --group-by
method[,task,...]``, or a study's fits) hold one law per group. Groups that differ only in
``method`` form a context (e.g. one task); methods are compared within it. ``ftscale critical``
/ ``recommend`` (from a fits file) and ``ftscale study fit`` (from its own fits) share
:func:`pair_table` and :func:`recommend_in`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from ftscale.analysis.health import judge_range
from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw
from ftscale.laws.critical import DEFAULT_RANGE, closed_form, critical_data_size
from ftscale.laws.io import law_from_record, load_fits
from ftscale.laws.recommend import recommend


def contexts_of(
    records: list[dict[str, Any]], methods: list[str] | None = None, path: str | None = None
) -> list[tuple[dict, dict[str, tuple[ScalingLaw, dict]]]]:
    """``[(context, {method: (law, record)})]`` of fit records, methods in the asked order
    (else in the records' order)."""
    by_ctx: dict[str, tuple[dict, dict[str, tuple[ScalingLaw, dict]]]] = {}
    for rec in records:
        group = rec["group"]
        if not isinstance(group, dict) or "method" not in group:
            raise UserError("fits have no 'method' group (fit with --group-by method)", path=path)
        ctx = {k: v for k, v in group.items() if k != "method"}
        key = json.dumps(ctx, sort_keys=True, default=str)
        entry = by_ctx.setdefault(key, (ctx, {}))
        entry[1][str(group["method"])] = (law_from_record(rec, path), rec)
    out = []
    for ctx, laws in by_ctx.values():
        if methods is not None:
            missing = [m for m in methods if m not in laws]
            if missing:
                known = ", ".join(sorted(laws))
                raise UserError(f"method {missing[0]!r} not in the fits (have: {known})", path=path)
            laws = {m: laws[m] for m in methods}
        if len({type(law) for law, _ in laws.values()}) > 1:
            raise UserError(
                "methods were fitted with different laws; compare like with like", path=path
            )
        out.append((ctx, laws))
    return out


def contexts(
    path: str, methods: list[str] | None = None
) -> list[tuple[dict, dict[str, tuple[ScalingLaw, dict]]]]:
    """:func:`contexts_of` the records of a fits file."""
    return contexts_of(load_fits(path), methods, path)


def pair_table(
    laws: dict[str, tuple[ScalingLaw, dict]],
    xs: list[float | None],
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> list[dict[str, Any]]:
    """Each pair of a context's methods: ``{"methods", "points": [critical_data_size at each
    x], "closed_form"}`` (closed form for multiplicative laws only, undefined where the fit
    records' beta intervals overlap: :func:`ftscale.laws.critical.closed_form`).

    Each point also says whether its critical data size lies inside both methods' runs at
    that factor value: ``measured_range`` and ``extrapolated``
    (:func:`ftscale.analysis.health.judge_range`; None for records without ranges)."""
    out = []
    for m1, m2 in itertools.combinations(laws, 2):
        (l1, r1), (l2, r2) = laws[m1], laws[m2]
        pts = []
        for x in xs:
            pt = critical_data_size(l1, l2, x, lo, hi)
            pts.append({**pt, **judge_range(pt["critical_data_size"], [r1, r2], x)})
        cf = (
            closed_form(l1.params_, l2.params_, r1.get("ci"), r2.get("ci"))
            if l1.name == "multiplicative"
            else None
        )
        out.append({"methods": [m1, m2], "points": pts, "closed_form": cf})
    return out


def recommend_in(
    laws: dict[str, tuple[ScalingLaw, dict]], x: float | None, data_size: float, **kwargs: Any
) -> dict[str, Any]:
    """:func:`ftscale.laws.recommend.recommend` for a context's methods, with the cost models
    their fit records carry, and the runs' ranges: each ranked method's ``measured_range`` at
    ``x`` and whether ``data_size`` is ``extrapolated`` beyond it, and for each flip whether it
    lies outside the runs of either of its two methods (``measured_range``, ``extrapolated``;
    :func:`ftscale.analysis.health.judge_range`)."""
    out = recommend(
        {m: law for m, (law, _) in laws.items()},
        x,
        data_size,
        cost_models={m: rec.get("cost_models") or {} for m, (_, rec) in laws.items()},
        **kwargs,
    )
    for row in out["ranking"]:
        row.update(judge_range(data_size, [laws[row["method"]][1]], x))
    for flip in out["flips"]:
        flip.update(judge_range(flip["data_size"], [laws[flip["from"]][1], laws[flip["to"]][1]], x))
    return out


def _x(law: ScalingLaw, at: float | None) -> float | None:
    if law.n_factors == 2 and at is None:
        raise UserError(f"the {law.name} law needs --at (a factor value)")
    return at if law.n_factors == 2 else None


def critical_pairs(
    path: str,
    *,
    methods: list[str] | None = None,
    at: list[float] | None = None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> dict[str, Any]:
    """``{"range", "pairs": [{"context", "methods", "points": [{"x", "critical_data_size",
    "crossings", "note", "measured_range", "extrapolated", ...}], "closed_form": {"H",
    "log10_H", "gamma", "defined", "why"} | None}]}``."""
    if methods is not None and len(methods) < 2:
        raise UserError("--methods needs at least two methods, e.g. fmt,lora")
    if not (0 < lo < hi):
        raise UserError(f"--range must satisfy 0 < LO < HI, got {lo:g},{hi:g}")
    pairs = []
    for ctx, laws in contexts(path, methods):
        if len(laws) < 2:
            continue
        first = next(iter(laws.values()))[0]
        xs = at if first.n_factors == 2 else [None]
        if first.n_factors == 2 and at is None:
            _x(first, None)
        pairs += [{"context": ctx, **p} for p in pair_table(laws, xs, lo, hi)]
    if not pairs:
        raise UserError("no context of the fits holds two methods to compare", path=path)
    return {"range": [lo, hi], "pairs": pairs}


def recommend_from_fits(
    path: str,
    *,
    x: float | None,
    data_size: float,
    tolerance: float = 0.01,
    cost: str | None = None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> dict[str, Any]:
    """``{"recommendations": [{"context", "x", "data_size", ...}]}`` with the fields of
    :func:`ftscale.laws.recommend.recommend` per context."""
    if not data_size > 0:
        raise UserError(f"--data-size must be positive, got {data_size:g}")
    if x is not None and not x > 0:
        raise UserError(f"--at must be positive, got {x:g}")
    recs = []
    for ctx, laws in contexts(path):
        first = next(iter(laws.values()))[0]
        xx = _x(first, x)
        r = recommend_in(laws, xx, data_size, cost=cost, tolerance=tolerance, lo=lo, hi=hi)
        if cost is not None and r["cost_column"] is None:
            raise UserError(f"cost column {cost!r} is not in every method's fits", path=path)
        recs.append({"context": ctx, "x": xx, "data_size": data_size, **r})
    return {"recommendations": recs}
