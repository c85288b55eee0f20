"""Fit a study's laws straight from its run store, and derive what the user asked for: the
critical data size between each pair of methods and a method recommendation.

Per (task, method): the finished runs are averaged over seeds (the paper averages 3 runs on
different random subsets per point); the points with the largest value of each
``fit.holdout_largest`` column (and those matching ``fit.holdout``) are held out and scored as
Delta_h; every law of ``fit.laws`` is fitted to the rest, through the same step as ``ftscale
fit`` (:func:`ftscale.analysis.fit.fit_group`, whose policy applies: too few points for a law
skips that fit with a note, so a report can say so).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.analysis.compare import contexts_of, pair_table, recommend_in
from ftscale.analysis.fit import FitOptions, fit_group, fits_document
from ftscale.errors import UserError
from ftscale.laws.registry import get_law
from ftscale.study.results import points_frame, results_frame
from ftscale.study.spec import Study
from ftscale.study.store import RunStore


def holdout_mask(points, study: Study) -> np.ndarray:
    """Points held out of a (task, method) group's fit: the largest value of each
    ``holdout_largest`` column, plus rows matching the ``holdout`` expression."""
    mask = np.zeros(len(points), dtype=bool)
    for col in study.fit.holdout_largest:
        if col in points and points[col].notna().any():
            vals = points[col].astype(float)
            mask |= (vals == vals.max()).to_numpy()
    if study.fit.holdout:
        from ftscale.tables import where

        mask |= where(points, study.fit.holdout).to_numpy(dtype=bool)
    return mask


def fit_study(
    study: Study, store: RunStore, data_hashes: dict[str, str] | None = None
) -> dict[str, Any]:
    """Fit every (task, method) of ``study`` from ``store``.

    Returns a fits document (``{"ftscale_fits": 1, "fits": [...]}`` plus ``study``, ``factor``,
    ``points`` (seed-averaged), ``critical``, ``recommendations`` and ``notes``) that
    ``ftscale critical`` and ``ftscale recommend`` also read. Fitting policy:
    :mod:`ftscale.analysis.fit`.
    """
    from ftscale.study.plan import plan_study

    keys = [r.run_key for r in plan_study(study, data_hashes)]
    df = results_frame(store, keys)
    pts = points_frame(df)
    if pts.empty:
        raise UserError(f"study {study.name}: no finished runs to fit yet")
    factor = study.factor
    options = FitOptions(
        space=study.fit.space,
        huber_delta=study.fit.huber_delta,
        bootstrap=study.fit.bootstrap,
        seed=study.fit.seed,
    )
    fits: list[dict[str, Any]] = []
    notes: list[str] = []
    points_out = []
    for (task, method), g in pts.groupby(["task", "method"], sort=True):
        g = g.sort_values([factor, "data_size"]).reset_index(drop=True)
        if g[factor].isna().any():
            notes.append(f"{task}/{method}: runs without {factor}; cannot fit")
            continue
        hold = holdout_mask(g, study)
        for i, row in g.iterrows():
            points_out.append(
                {
                    "task": task,
                    "method": method,
                    "model": row["model"],
                    factor: float(row[factor]),
                    "data_size": float(row["data_size"]),
                    "loss": float(row["loss"]),
                    "loss_std": float(row["loss_std"]),
                    "n_seeds": int(row["n_seeds"]),
                    "heldout": bool(hold[i]),
                }
            )
        for law_name in study.fit.laws:
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
    values = sorted({p[factor] for p in points_out})
    return fits_document(
        fits,
        notes,
        study=study.name,
        factor=factor,
        points=points_out,
        critical=critical_table(fits, values),
        recommendations=recommendation_table(fits, pts, factor),
    )


def _joint_contexts(fits: list[dict[str, Any]], law: str = "multiplicative") -> list:
    """Per task, the methods' two-factor fits of ``law`` (see :func:`contexts_of`)."""
    return contexts_of([f for f in fits if f["law"] == law and f["factor"] is not None])


def critical_table(
    fits: list[dict[str, Any]], values: list[float], law: str = "multiplicative"
) -> list[dict[str, Any]]:
    """Critical data sizes between each pair of methods, per task, at each factor value."""
    return [
        {"task": ctx["task"], "methods": p["methods"], "law": law, **p}
        for ctx, laws in _joint_contexts(fits, law)
        for p in pair_table(laws, values)
    ]


def recommendation_table(
    fits: list[dict[str, Any]], pts, factor: str, law: str = "multiplicative"
) -> list[dict[str, Any]]:
    """For each task and each factor value of the study, the recommendation at the largest
    data size that every method was run with (a budget the user plausibly has)."""
    out = []
    for ctx, laws in _joint_contexts(fits, law):
        if len(laws) < 2:
            continue
        task = ctx["task"]
        sub = pts[pts["task"] == task]
        budget = float(sub.groupby("method")["data_size"].max().min())
        for x in sorted(sub[factor].dropna().unique()):
            rec = recommend_in(laws, float(x), budget)
            out.append({"task": task, factor: float(x), "data_size": budget, **rec})
    return out


def format_fits(doc: dict[str, Any]) -> str:
    """A compact human-readable summary of :func:`fit_study`'s document."""
    lines = [f"study {doc['study']}: factor {doc['factor']}"]
    lines.append(f"{'task':18} {'method':7} {'law':15} {'params':58} {'Δe':>7} {'Δh':>7}")
    for f in doc["fits"]:
        g = f["group"]
        params = " ".join(f"{k}={v:.3g}" for k, v in f["params"].items())
        dh = "-" if f["delta_h"] is None else f"{f['delta_h']:.4f}"
        extra = (
            "" if f["factor"] is not None else f" @{doc['factor']}={g.get(doc['factor'], '?'):g}"
        )
        lines.append(
            f"{g['task'][:18]:18} {g['method']:7} {(f['law'] + extra)[:15]:15} {params[:58]:58} "
            f"{f['delta_e']:7.4f} {dh:>7}" + ("" if f["converged"] else "  (not converged)")
        )
    for c in doc.get("critical", []):
        pts = ", ".join(
            f"{p['x']:.3g}: "
            + ("none" if p["critical_data_size"] is None else f"{p['critical_data_size']:.3g}")
            for p in c["points"]
        )
        lines.append(
            f"critical data size {c['methods'][0]} vs {c['methods'][1]} ({c['task']}) by {doc['factor']}: {pts}"
        )
    for n in doc.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)
