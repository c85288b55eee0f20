"""Method comparisons over fit records: critical data sizes and recommendations per context.

Fit records with a ``method`` in their group (a fits file from ``ftscale fit --group-by
method[,task,...]``, or a study's fits) hold one or more laws per group; the one used is
:func:`used_records`' (a named law, else the group's chosen law, its draws pooled with the
group's other laws by weight: :func:`averaged`), so that ``critical`` and ``recommend`` on a
study's fits file answer as ``study fit`` does. Groups that differ only in ``method`` form a
context (e.g. one task); methods are compared within it. ``ftscale critical``
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
from ftscale.laws.cost import predict_cost
from ftscale.laws.critical import DEFAULT_RANGE, closed_form, critical_budget, critical_data_size
from ftscale.laws.io import comparable_fits, law_from_record, load_fits
from ftscale.laws.recommend import compute_matched, pet_size_choice, recommend

#: Budget axes: the name of the axis (``--axis``, ``--budget-*``) -> the cost column.
BUDGET_COLUMNS = {"flops": "flops", "seconds": "train_seconds"}


def contexts_of(
    records: list[dict[str, Any]],
    methods: list[str] | None = None,
    path: str | None = None,
    *,
    mixed: bool = False,
) -> list[tuple[dict, dict[str, tuple[ScalingLaw, dict]]]]:
    """``[(context, {method: (law, record)})]`` of fit records, methods in the asked order
    (else in the records' order). A context whose methods were fitted with different laws is
    an error unless ``mixed`` (each method's chosen law: ``study fit``, ``fit --law auto``)."""
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
        if not mixed and len({type(law) for law, _ in laws.values()}) > 1:
            raise UserError(
                "methods were fitted with different laws; compare like with like", path=path
            )
        out.append((ctx, laws))
    return out


def used_records(records: list[dict[str, Any]], law: str | None = None) -> list[dict[str, Any]]:
    """The records a comparison uses, one per group, among the comparable fits
    (:func:`ftscale.laws.io.comparable_fits`: the joint ones, else the one-factor ones): those of
    ``law`` if given, else each group's chosen law (``"chosen": true``: law choice by held-out
    error), else its first record."""
    pool = comparable_fits(records)
    if law is not None:
        return [r for r in pool if r["law"] == law]
    by_group: dict[str, dict[str, Any]] = {}
    for rec in pool:
        key = json.dumps(rec["group"], sort_keys=True, default=str)
        if key not in by_group or (rec.get("chosen") and not by_group[key].get("chosen")):
            by_group[key] = rec
    return list(by_group.values())


def averaged(fits: list[dict[str, Any]], est: ScalingLaw, rec: dict[str, Any]) -> ScalingLaw:
    """The chosen law ``est`` (of record ``rec``) with its draws pooled with those of the
    other laws fitted to the same group, by their ``weight``
    (:func:`ftscale.analysis.calibrate.set_weights`): a :class:`LawMixture` whose point
    predictions are the chosen law's; ``est`` itself where no other law has weight or
    draws."""
    from ftscale.laws.mixture import LawMixture

    others = [
        f
        for f in fits
        if f is not rec
        and f["group"] == rec["group"]  # one group: the joint fits, or one model's
        and f.get("weight")
        and f.get("bootstrap_params")
    ]
    if not others or est.bootstrap_params_ is None or not rec.get("weight"):
        return est
    members = [(est, rec["weight"])] + [(law_from_record(f), f["weight"]) for f in others]
    return LawMixture(members, seed=int(rec.get("seed") or 0))


def chosen_contexts(
    records: list[dict[str, Any]],
    methods: list[str] | None = None,
    path: str | None = None,
    law: str | None = None,
) -> list[tuple[dict, dict[str, tuple[ScalingLaw, dict]]]]:
    """:func:`contexts_of` the :func:`used_records` of ``records``; without ``law``, each
    method's chosen law with the group's draws pooled (:func:`averaged`), methods free to
    differ in law."""
    used = used_records(records, law)
    out = contexts_of(used, methods, path, mixed=law is None)
    if law is None:
        for _, laws in out:
            for m, (est, rec) in laws.items():
                laws[m] = (averaged(records, est, rec), rec)
    return out


def contexts(
    path: str, methods: list[str] | None = None, law: str | None = None
) -> list[tuple[dict, dict[str, tuple[ScalingLaw, dict]]]]:
    """:func:`chosen_contexts` of the records of a fits file; a ``law`` it holds no fits of is
    a UserError naming the laws it does hold."""
    records = load_fits(path)
    out = chosen_contexts(records, methods, path, law)
    if law is not None and not out:
        have = ", ".join(dict.fromkeys(r["law"] for r in comparable_fits(records)))
        raise UserError(f"no fits of the {law} law (the fits hold: {have})", path=path)
    return out


def pair_table(
    laws: dict[str, tuple[ScalingLaw, dict]],
    xs: list[float | None],
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> list[dict[str, Any]]:
    """Each pair of a context's methods: ``{"methods", "points": [critical_data_size at each
    x], "closed_form"}`` (closed form where both are of one form whose ``closed_form_crossing``
    is set, undefined where the fit records' beta intervals overlap:
    :func:`ftscale.laws.critical.closed_form`).

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
            if l1.name == l2.name and l1.closed_form_crossing
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
    law: str | None = None,
) -> dict[str, Any]:
    """``{"range", "pairs": [{"context", "methods", "points": [{"x", "critical_data_size",
    "crossings", "note", "measured_range", "extrapolated", ...}], "closed_form": {"H",
    "log10_H", "gamma", "defined", "why"} | None}]}``."""
    if methods is not None and len(methods) < 2:
        raise UserError("--methods needs at least two methods, e.g. fmt,lora")
    if not (0 < lo < hi):
        raise UserError(f"--range must satisfy 0 < LO < HI, got {lo:g},{hi:g}")
    pairs = []
    for ctx, laws in contexts(path, methods, law):
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
    law: str | None = None,
) -> dict[str, Any]:
    """``{"recommendations": [{"context", "x", "data_size", ...}]}`` with the fields of
    :func:`ftscale.laws.recommend.recommend` per context."""
    if not data_size > 0:
        raise UserError(f"--data-size must be positive, got {data_size:g}")
    if x is not None and not x > 0:
        raise UserError(f"--at must be positive, got {x:g}")
    recs = []
    for ctx, laws in contexts(path, law=law):
        first = next(iter(laws.values()))[0]
        xx = _x(first, x)
        r = recommend_in(laws, xx, data_size, cost=cost, tolerance=tolerance, lo=lo, hi=hi)
        if cost is not None and r["cost_column"] is None:
            raise UserError(f"cost column {cost!r} is not in every method's fits", path=path)
        recs.append({"context": ctx, "x": xx, "data_size": data_size, **r})
    return {"recommendations": recs}


def cost_models_of(
    laws: dict[str, tuple[ScalingLaw, dict]], column: str, path: str | None = None
) -> dict[str, dict]:
    """Method -> the cost model of ``column`` its fit record carries; a UserError naming the
    first method without one (its runs had no ``column`` values)."""
    out = {}
    for m, (_, rec) in laws.items():
        model = (rec.get("cost_models") or {}).get(column)
        if model is None:
            raise UserError(
                f"method {m!r} has no {column} cost model (its runs carry no {column!r} column)",
                path=path,
            )
        out[m] = model
    return out


def budget_recommend_in(
    laws: dict[str, tuple[ScalingLaw, dict]],
    x: float | None,
    budget: float,
    column: str,
    path: str | None = None,
) -> dict[str, Any]:
    """:func:`ftscale.laws.recommend.compute_matched` for a context's methods with their
    records' ``column`` cost models; each ranked method also says whether its data size at
    the budget lies outside its own runs at ``x`` (``measured_range``, ``extrapolated``)."""
    out = compute_matched(
        {m: law for m, (law, _) in laws.items()},
        x,
        budget,
        cost_models_of(laws, column, path),
        column,
    )
    for row in out["ranking"]:
        row.update(judge_range(row["data_size_at_budget"], [laws[row["method"]][1]], x))
    return out


def budget_from_fits(
    path: str, *, x: float | None, budget: float, column: str, law: str | None = None
) -> dict[str, Any]:
    """``{"recommendations": [{"context", "x", "budget", "cost_column", "ranking", "best",
    "p_best", "n_draws"}]}``: compute-matched recommendations per context."""
    if not budget > 0:
        raise UserError(f"the budget must be positive, got {budget:g}")
    recs = []
    for ctx, laws in contexts(path, law=law):
        first = next(iter(laws.values()))[0]
        xx = _x(first, x)
        recs.append(
            {"context": ctx, "x": xx, **budget_recommend_in(laws, xx, budget, column, path)}
        )
    return {"recommendations": recs}


def default_budget_range(
    costs: list[dict], x: float | None, lo: float = DEFAULT_RANGE[0], hi: float = DEFAULT_RANGE[1]
) -> tuple[float, float] | None:
    """The budgets at which every method of ``costs`` trains on a data size in [lo, hi]
    (examples): [max of their costs at ``lo``, min of their costs at ``hi``]; None if empty."""
    b_lo = max(predict_cost(c, x, lo) for c in costs)
    b_hi = min(predict_cost(c, x, hi) for c in costs)
    return (b_lo, b_hi) if 0 < b_lo < b_hi and b_hi < float("inf") else None


def budget_pair_table(
    laws: dict[str, tuple[ScalingLaw, dict]],
    xs: list[float | None],
    column: str,
    rng: tuple[float, float] | None = None,
    path: str | None = None,
) -> list[dict[str, Any]]:
    """Each pair of a context's methods: ``{"methods", "cost_column", "cost_models", "points":
    [critical budget at each x]}`` (:func:`ftscale.laws.critical.critical_budget`), searched
    over ``rng`` (budget units) or, by default, :func:`default_budget_range`. Each point also
    carries ``range`` (the budgets searched), ``measured_ranges`` (each method's runs at x,
    examples) and ``extrapolated``: whether either method's data size at the crossing lies
    outside its own runs (None without ranges or without a crossing)."""
    from ftscale.laws.recommend import cost_model_summary

    costs = cost_models_of(laws, column, path)
    out = []
    for m1, m2 in itertools.combinations(laws, 2):
        (l1, r1), (l2, r2) = laws[m1], laws[m2]
        pts = []
        for x in xs:
            r = rng or default_budget_range([costs[m1], costs[m2]], x)
            if r is None:
                pts.append(
                    {
                        "x": x,
                        "critical_budget": None,
                        "crossings": [],
                        "data_sizes": None,
                        "note": "no budget trains both methods on 1 to 1e12 examples",
                        "critical_budget_ci": None,
                        "p_crossing": None,
                        "n_draws": None,
                        "range": None,
                        "measured_ranges": None,
                        "extrapolated": None,
                    }
                )
                continue
            pt = critical_budget(l1, l2, costs[m1], costs[m2], x, r[0], r[1])
            j1 = judge_range(None if pt["data_sizes"] is None else pt["data_sizes"][0], [r1], x)
            j2 = judge_range(None if pt["data_sizes"] is None else pt["data_sizes"][1], [r2], x)
            ex = [j1["extrapolated"], j2["extrapolated"]]
            pts.append(
                {
                    **pt,
                    "range": [float(r[0]), float(r[1])],
                    "measured_ranges": [j1["measured_range"], j2["measured_range"]],
                    "extrapolated": None if None in ex else bool(any(ex)),
                }
            )
        out.append(
            {
                "methods": [m1, m2],
                "cost_column": column,
                "cost_models": [cost_model_summary(column, costs[m]) for m in (m1, m2)],
                "points": pts,
            }
        )
    return out


def critical_budget_pairs(
    path: str,
    *,
    column: str,
    methods: list[str] | None = None,
    at: list[float] | None = None,
    rng: tuple[float, float] | None = None,
    law: str | None = None,
) -> dict[str, Any]:
    """``{"axis_column", "range", "pairs": [{"context", "methods", "cost_column",
    "cost_models", "points": [{"x", "critical_budget", ...}]}]}``: :func:`budget_pair_table`
    per context of a fits file."""
    if methods is not None and len(methods) < 2:
        raise UserError("--methods needs at least two methods, e.g. fmt,lora")
    pairs = []
    for ctx, laws in contexts(path, methods, law):
        if len(laws) < 2:
            continue
        first = next(iter(laws.values()))[0]
        if first.n_factors == 2 and at is None:
            _x(first, None)
        xs = at if first.n_factors == 2 else [None]
        pairs += [{"context": ctx, **p} for p in budget_pair_table(laws, xs, column, rng, path)]
    if not pairs:
        raise UserError("no context of the fits holds two methods to compare", path=path)
    return {"cost_column": column, "range": None if rng is None else list(rng), "pairs": pairs}


def pet_sizes_run(rec: dict[str, Any]) -> list[float]:
    """The PET sizes a fit record's runs used (its ``data_range_by_factor``), else the ends of
    its ``factor_range``; [] for a record without ranges."""
    by = rec.get("data_range_by_factor") or []
    if by:
        return sorted({float(e["x"]) for e in by})
    return sorted({float(v) for v in rec.get("factor_range") or []})


def is_pet_size_fit(rec: dict[str, Any]) -> bool:
    """Whether a fit record is a two-factor fit over ``pet_size``."""
    return rec.get("factor") == "pet_size"


def pet_size_in(
    laws: dict[str, tuple[ScalingLaw, dict]], data_size: float, tolerance: float = 0.01
) -> dict[str, dict[str, Any]]:
    """Method -> :func:`ftscale.laws.recommend.pet_size_choice` over the PET sizes its runs
    used, each candidate also saying whether ``data_size`` lies outside its runs at that size
    (``measured_range``, ``extrapolated``); methods whose fit is not over pet_size, or whose
    record names no sizes, are left out."""
    out = {}
    for m, (law, rec) in laws.items():
        sizes = pet_sizes_run(rec)
        if law.n_factors != 2 or not is_pet_size_fit(rec) or not sizes:
            continue
        choice = pet_size_choice(law, sizes, data_size, tolerance=tolerance)
        for c in choice["candidates"]:
            c.update(judge_range(data_size, [rec], c["pet_size"]))
        choice["factor_range"] = rec.get("factor_range")
        out[m] = choice
    return out


def pet_size_from_fits(path: str, *, data_size: float, tolerance: float = 0.01) -> dict[str, Any]:
    """``{"data_size", "tolerance", "pet_size_choice": [{"context", "methods": {method:
    pet_size_choice}}]}`` for a fits file over pet_size (``--factor pet_size``)."""
    if not data_size > 0:
        raise UserError(f"--data-size must be positive, got {data_size:g}")
    recs = load_fits(path)
    if not any(is_pet_size_fit(r) for r in recs):
        raise UserError(
            "no fit is over pet_size (fit with --factor pet_size, or a study with "
            'factor = "pet_size")',
            path=path,
        )
    out = []
    for ctx, laws in contexts_of([r for r in recs if is_pet_size_fit(r)], None, path):
        methods = pet_size_in(laws, data_size, tolerance)
        if methods:
            out.append({"context": ctx, "methods": methods})
    if not out:
        raise UserError("the pet_size fits record no PET sizes (refit them)", path=path)
    return {"data_size": data_size, "tolerance": tolerance, "pet_size_choice": out}
