"""Fit a study's laws straight from its run store, and derive what the user asked for: the
critical data size between each pair of methods and a method recommendation.

Per (task, method): the finished runs are averaged over seeds (the paper averages 3 runs on
different random subsets per point); the points with the largest value of each
``fit.holdout_largest`` column (and those matching ``fit.holdout``) are held out and scored as
Delta_h; every law of ``fit.laws`` is fitted to the rest, through the same step as ``ftscale
fit`` (:func:`ftscale.analysis.fit.fit_group`, whose policy applies: too few points for a law
skips that fit with a note, so a report can say so).

The document also carries its health checks (:mod:`ftscale.analysis.health`: curves that rise
with data, laws that do not extrapolate, critical data sizes and recommendation flips outside
the runs) and the answer: per task, the recommended method at the study's largest factor value
and largest data size, with the probability that it is best and the flags that qualify it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.analysis.answer import (  # noqa: F401 - re-exported: their home before the split
    P_BEST_FLAGGED_CAP,
    answer_of,
    cap_p_best,
    laws_used,
)
from ftscale.analysis.calibrate import choose
from ftscale.analysis.compare import (
    budget_pair_table,
    chosen_contexts,
    pair_table,
    pet_size_in,
    recommend_in,
)
from ftscale.analysis.covariates import applicable
from ftscale.analysis.fit import FitOptions, fit_group, fits_document
from ftscale.analysis.prose import (  # noqa: F401 - re-exported: their home before the split
    _at,
    _flip_message,
    answer_text,
    curve_label,
    fit_label,
    format_fits,
    health_of,
)
from ftscale.errors import UserError
from ftscale.laws.registry import expand_laws, get_law
from ftscale.study.results import points_frame, results_frame
from ftscale.study.spec import FitSpec, Study
from ftscale.study.store import RunStore


def holdout_mask(points, study: Study | FitSpec) -> np.ndarray:
    """Points held out of a (task, method) group's fit: the largest value of each
    ``holdout_largest`` column, plus rows matching the ``holdout`` expression (``study``: a
    study or its ``fit`` settings)."""
    fit = study.fit if isinstance(study, Study) else study
    mask = np.zeros(len(points), dtype=bool)
    for col in fit.holdout_largest:
        # a column with one value (a study of one model) has no largest value to hold out
        if col in points and points[col].nunique() > 1:
            vals = points[col].astype(float)
            mask |= (vals == vals.max()).to_numpy()
    if fit.holdout:
        from ftscale.tables import where

        mask |= where(points, fit.holdout).to_numpy(dtype=bool)
    return mask


def fit_study(
    study: Study, store: RunStore, data_hashes: dict[str, str] | None = None
) -> dict[str, Any]:
    """Fit every (task, method) of ``study`` from ``store``.

    Returns a fits document (``{"ftscale_fits": 1, "fits": [...]}`` plus ``study``, ``factor``,
    ``points`` (seed-averaged), ``critical``, ``critical_flops`` (:func:`critical_budget_table`),
    ``recommendations``, ``pet_size_choice`` (:func:`pet_size_table`; [] unless the factor is
    pet_size), ``health`` (:func:`health_of`), ``answer`` (:func:`answer_of`) and ``notes``)
    that ``ftscale critical`` and ``ftscale recommend`` also read. Fitting policy:
    :mod:`ftscale.analysis.fit`.
    """
    from ftscale.study.plan import plan_study

    keys = [r.run_key for r in plan_study(study, data_hashes)]
    df = results_frame(store, keys)
    pts = points_frame(df)
    if pts.empty:
        raise UserError(f"study {study.name}: no finished runs to fit yet")
    return fit_points(pts, study.factor, study.fit, study.name)


def fit_points(
    pts, factor: str, fit: FitSpec, name: str = "study", *, calibrate: bool = True
) -> dict[str, Any]:
    """:func:`fit_study` on a study's seed-averaged points (:func:`points_frame`: ``task``,
    ``method``, ``model``, ``pet_size``, ``factor``, ``data_size``, ``loss``, ``loss_std``,
    ``n_seeds``) with the ``fit`` settings; the benchmarks call it on simulated points
    (``calibrate`` False: the point bootstrap without cross-validation, the fit before
    :mod:`ftscale.analysis.calibrate`)."""
    options = FitOptions(
        space=fit.space,
        huber_delta=fit.huber_delta,
        bootstrap=fit.bootstrap,
        seed=fit.seed,
        calibrate=calibrate,
    )
    fits: list[dict[str, Any]] = []
    notes: list[str] = []
    points_out = []
    for (task, method), g in pts.groupby(["task", "method"], sort=True):
        g = g.sort_values([factor, "data_size"]).reset_index(drop=True)
        if g[factor].isna().any():
            notes.append(f"{task}/{method}: runs without {factor}; cannot fit")
            continue
        hold = holdout_mask(g, fit)
        for i, row in g.iterrows():
            points_out.append(
                {
                    "task": task,
                    "method": method,
                    "model": row["model"],
                    "pet_size": _num(row.get("pet_size")),
                    factor: float(row[factor]),
                    "data_size": float(row["data_size"]),
                    "loss": float(row["loss"]),
                    "loss_std": float(row["loss_std"]),
                    "n_seeds": int(row["n_seeds"]),
                    "heldout": bool(hold[i]),
                    "zero_shot_loss": _num(row.get("zero_shot_loss")),
                }
            )
        chosen_groups: dict[str, list[dict[str, Any]]] = {}
        for law_name in expand_laws(fit.laws, 1 if pts[factor].nunique() == 1 else 2):
            if law_name not in fit.laws and not applicable(get_law(law_name), g, factor=factor):
                continue  # "auto": a covariate law where the runs did not measure it
            # a one-factor law is fitted at each factor value on its own
            if get_law(law_name).n_factors == 2:
                parts = [(None, np.ones(len(g), dtype=bool))]
            else:
                parts = [(v, (g[factor] == v).to_numpy()) for v in sorted(g[factor].unique())]
            for value, rows in parts:
                group = {"task": task, "method": method}
                if value is not None:
                    group[factor] = float(value)
                record, why = fit_group(
                    law_name,
                    g[rows].reset_index(drop=True),
                    hold[rows],
                    group=group,
                    factor=factor if value is None else None,
                    options=options,
                    label=f"{task}/{method}/{law_name}"
                    + ("" if value is None else f" at {factor}={value:g}"),
                )
                notes += why
                if record is not None:
                    fits.append(record)
                    key = "joint" if value is None else f"{value!r}"
                    chosen_groups.setdefault(key, []).append(record)
        for recs in chosen_groups.values():
            choose(recs)
    values = sorted({p[factor] for p in points_out})
    critical = critical_table(fits, values)
    recommendations = recommendation_table(fits, pts, factor)
    health = health_of(fits, points_out, critical, recommendations, factor)
    return fits_document(
        fits,
        notes,
        study=name,
        factor=factor,
        points=points_out,
        critical=critical,
        critical_flops=critical_budget_table(fits, values),
        recommendations=recommendations,
        pet_size_choice=pet_size_table(fits, pts) if factor == "pet_size" else [],
        health=health,
        answer=answer_of(fits, points_out, factor, health),
    )


def _num(v: Any) -> float | None:
    """A number of a points row, None for a missing one (None or NaN)."""
    return None if v is None or v != v else float(v)


def critical_table(
    fits: list[dict[str, Any]],
    values: list[float],
    law: str | None = None,
    search: tuple[float, float] | None = None,
) -> list[dict[str, Any]]:
    """Critical data sizes between each pair of methods, per task, at each factor value
    (``search``: the data-size range searched, examples; default that of
    :func:`ftscale.analysis.compare.pair_table`)."""
    return [
        {
            "task": ctx["task"],
            "methods": p["methods"],
            "law": law or laws_used({m: laws[m] for m in p["methods"]}),
            **p,
        }
        for ctx, laws in chosen_contexts(fits, law=law)
        for p in pair_table(laws, values, *(search or ()))
    ]


def critical_budget_table(
    fits: list[dict[str, Any]],
    values: list[float],
    law: str | None = None,
    column: str = "flops",
) -> list[dict[str, Any]]:
    """Critical compute budgets (units of ``column``: FLOPs by default) between each pair of
    methods, per task, at each factor value: where their compute-matched losses cross, each
    method on the data size its fitted cost model affords
    (:func:`ftscale.analysis.compare.budget_pair_table`). Tasks where a method has no
    ``column`` cost model (its runs recorded none) are left out."""
    out = []
    for ctx, laws in chosen_contexts(fits, law=law):
        if len(laws) < 2 or any(
            column not in (rec.get("cost_models") or {}) for _, rec in laws.values()
        ):
            continue
        try:
            pairs = budget_pair_table(laws, list(values), column)
        except UserError:  # a cost model that does not grow with data: no budget picks a size
            continue
        out += [{"task": ctx["task"], "law": law or laws_used(laws), **p} for p in pairs]
    return out


def pet_size_table(
    fits: list[dict[str, Any]], pts, law: str | None = None, tolerance: float = 0.01
) -> list[dict[str, Any]]:
    """For a pet_size study: per task, the PET size to use per method
    (:func:`ftscale.analysis.compare.pet_size_in`) at the largest data size that every method
    was run with (the budget of :func:`recommendation_table`), among the sizes run:
    ``[{"task", "data_size", "tolerance", "methods": {method: {"best",
    "smallest_within_tolerance", "predicted_loss", "interval", "candidates", ...}}}]``."""
    out = []
    for ctx, laws in chosen_contexts(fits, law=law):
        task = ctx["task"]
        sub = pts[pts["task"] == task]
        budget = float(sub.groupby("method")["data_size"].max().min())
        methods = pet_size_in(laws, budget, tolerance)
        if methods:
            out.append(
                {"task": task, "data_size": budget, "tolerance": tolerance, "methods": methods}
            )
    return out


def recommendation_table(
    fits: list[dict[str, Any]], pts, factor: str, law: str | None = None
) -> list[dict[str, Any]]:
    """For each task and each factor value of the study, the recommendation at the largest
    data size that every method was run with (a budget the user plausibly has)."""
    out = []
    for ctx, laws in chosen_contexts(fits, law=law):
        if len(laws) < 2:
            continue
        task = ctx["task"]
        sub = pts[pts["task"] == task]
        budget = float(sub.groupby("method")["data_size"].max().min())
        for x in sorted(sub[factor].dropna().unique()):
            rec = recommend_in(laws, float(x), budget)
            out.append({"task": task, factor: float(x), "data_size": budget, **rec})
    return out
