"""Fit a study's laws straight from its run store, and derive what the user asked for: the
critical data size between each pair of methods and a method recommendation.

Per (task, method): the finished runs are averaged over seeds (the paper averages 3 runs on
different random subsets per point); the points with the largest value of each
``fit.holdout_largest`` column (and those matching ``fit.holdout``) are held out and scored as
Delta_h; every law of ``fit.laws`` is fitted to the rest. Too few points for a law is not an
error: the fit is skipped and the reason recorded in ``notes``, so a report can say so.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np

from ftscale.errors import ConvergenceWarning, UserError
from ftscale.laws.cost import fit_cost_model
from ftscale.laws.critical import closed_form, critical_data_size
from ftscale.laws.io import fit_record, law_from_record
from ftscale.laws.recommend import recommend
from ftscale.laws.registry import get_law, make_law
from ftscale.schema import COST_COLUMNS
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
    ``ftscale critical`` and ``ftscale recommend`` also read.
    """
    from ftscale.study.plan import plan_study

    keys = [r.run_key for r in plan_study(study, data_hashes)]
    df = results_frame(store, keys)
    pts = points_frame(df)
    if pts.empty:
        raise UserError(f"study {study.name}: no finished runs to fit yet")
    factor = study.factor
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
        fit_pts, held = g[~hold], g[hold]
        cost_models = {}
        for col in COST_COLUMNS:
            if col in g and g[col].notna().sum() >= 2:
                model = fit_cost_model(
                    g[factor].to_numpy(float),
                    g["data_size"].to_numpy(float),
                    g[col].to_numpy(float),
                )
                if model is not None:
                    cost_models[col] = model
        for law_name in study.fit.laws:
            cls = get_law(law_name)
            groups = (
                [(None, fit_pts, held)]
                if cls.n_factors == 2
                else [
                    (v, fit_pts[fit_pts[factor] == v], held[held[factor] == v])
                    for v in sorted(g[factor].unique())
                ]
            )
            for value, fp, hp in groups:
                label = f"{task}/{method}/{law_name}" + (
                    "" if value is None else f" at {factor}={value:g}"
                )
                law = make_law(
                    law_name,
                    huber_delta=study.fit.huber_delta,
                    space=study.fit.space,
                    n_bootstrap=study.fit.bootstrap,
                    seed=study.fit.seed,
                )
                args = (fp[factor].to_numpy(float),) if cls.n_factors == 2 else (None,)
                hold_args = (
                    hp[factor].to_numpy(float) if cls.n_factors == 2 else None,
                    hp["data_size"].to_numpy(float),
                    hp["loss"].to_numpy(float),
                )
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always", ConvergenceWarning)
                        law.fit(
                            *args,
                            fp["data_size"].to_numpy(float),
                            fp["loss"].to_numpy(float),
                            holdout=hold_args,
                        )
                except UserError as exc:
                    notes.append(f"{label}: not fitted ({exc})")
                    continue
                for w in caught:
                    if issubclass(w.category, ConvergenceWarning):
                        notes.append(f"{label}: {w.message}")
                group = {"task": task, "method": method}
                if value is not None:
                    group[factor] = float(value)
                fits.append(
                    fit_record(
                        law,
                        group=group,
                        factor=factor if cls.n_factors == 2 else None,
                        data="data_size",
                        target="loss",
                        cost_models=cost_models,
                    )
                )
    values = sorted({p[factor] for p in points_out})
    doc: dict[str, Any] = {
        "ftscale_fits": 1,
        "study": study.name,
        "factor": factor,
        "fits": fits,
        "points": points_out,
        "notes": notes,
    }
    doc["critical"] = critical_table(fits, values)
    doc["recommendations"] = recommendation_table(fits, pts, factor)
    return doc


def _joint_fits(
    fits: list[dict[str, Any]], law: str = "multiplicative"
) -> dict[tuple[str, str], dict]:
    return {
        (f["group"]["task"], f["group"]["method"]): f
        for f in fits
        if f["law"] == law and f["factor"] is not None
    }


def critical_table(
    fits: list[dict[str, Any]], values: list[float], law: str = "multiplicative"
) -> list[dict[str, Any]]:
    """Critical data sizes between each pair of methods, per task, at each factor value."""
    by = _joint_fits(fits, law)
    out = []
    tasks = sorted({t for t, _ in by})
    for task in tasks:
        methods = sorted(m for t, m in by if t == task)
        for m1, m2 in itertools.combinations(methods, 2):
            r1, r2 = by[(task, m1)], by[(task, m2)]
            l1, l2 = law_from_record(r1), law_from_record(r2)
            out.append(
                {
                    "task": task,
                    "methods": [m1, m2],
                    "law": law,
                    "points": [critical_data_size(l1, l2, x) for x in values],
                    "closed_form": closed_form(r1["params"], r2["params"]),
                }
            )
    return out


def recommendation_table(
    fits: list[dict[str, Any]], pts, factor: str, law: str = "multiplicative"
) -> list[dict[str, Any]]:
    """For each task and each factor value of the study, the recommendation at the largest
    data size that every method was run with (a budget the user plausibly has)."""
    by = _joint_fits(fits, law)
    out = []
    for task in sorted({t for t, _ in by}):
        laws = {m: law_from_record(r) for (t, m), r in by.items() if t == task}
        costs = {m: r.get("cost_models", {}) for (t, m), r in by.items() if t == task}
        if len(laws) < 2:
            continue
        sub = pts[pts["task"] == task]
        budget = float(sub.groupby("method")["data_size"].max().min())
        for x in sorted(sub[factor].dropna().unique()):
            rec = recommend(laws, float(x), budget, cost_models=costs)
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
