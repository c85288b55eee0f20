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

from ftscale.analysis.calibrate import choose, predictive_interval
from ftscale.analysis.compare import (
    budget_pair_table,
    contexts_of,
    pair_table,
    pet_size_in,
    recommend_in,
)
from ftscale.analysis.fit import FitOptions, fit_group, fits_document
from ftscale.analysis.health import (
    method_label,
    range_text,
)
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
from ftscale.laws.recommend import p_best_of
from ftscale.laws.registry import get_law
from ftscale.study.results import points_frame, results_frame
from ftscale.study.spec import FitSpec, Study
from ftscale.study.store import RunStore
from ftscale.textfmt import fmt_size


def expand_laws(laws: tuple[str, ...] | list[str]) -> list[str]:
    """The study's ``fit.laws`` with ``"auto"`` replaced by every two-factor law of the
    registry marked ``in_auto`` (in its order), duplicates dropped."""
    from ftscale.laws.registry import LAWS

    out: list[str] = []
    for name in laws:
        auto = [k for k, c in LAWS.items() if c.n_factors == 2 and c.in_auto]
        out += auto if name == "auto" else [name]
    return list(dict.fromkeys(out))


def holdout_mask(points, study: Study | FitSpec) -> np.ndarray:
    """Points held out of a (task, method) group's fit: the largest value of each
    ``holdout_largest`` column, plus rows matching the ``holdout`` expression (``study``: a
    study or its ``fit`` settings)."""
    fit = study.fit if isinstance(study, Study) else study
    mask = np.zeros(len(points), dtype=bool)
    for col in fit.holdout_largest:
        if col in points and points[col].notna().any():
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
        for law_name in expand_laws(fit.laws):
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


def answer_of(
    fits: list[dict[str, Any]],
    points: list[dict[str, Any]],
    factor: str,
    health: dict[str, list[dict[str, Any]]],
    law: str | None = None,
) -> dict[str, Any]:
    """The study's answer: per task, the recommended method at the task's largest factor value
    and largest data size (examples) of its runs, from the ``law`` fits.

    ``{"factor", "law", "tasks": [{"task", factor, "model", "data_size", "best", "p_best",
    "n_draws", "ranking", "flips", "flags": [{"kind", "message"}], "text"}]}``. ``p_best`` is
    the share of bootstrap draws in which ``best`` predicts the lowest loss (None without
    draws). ``flags`` qualify the answer: ``data_size`` (the data size lies outside a method's
    runs at that factor value: its loss there is extrapolated), ``flip`` (a change of the best
    method between the task's smallest data size and the answer's that lies outside the runs
    of its two methods), ``curve`` (a curve of the task's compared methods rises with data)
    and ``law`` (a compared method's law does not extrapolate). A task without two methods to
    compare has ``best`` None.
    """
    out = []
    contexts = {ctx.get("task"): laws for ctx, laws in _joint_contexts(fits, law)}
    tasks = sorted({p["task"] for p in points})
    for task in tasks:
        tp = [p for p in points if p["task"] == task]
        x = max(p[factor] for p in tp)
        d = max(p["data_size"] for p in tp)
        d_min = min(p["data_size"] for p in tp)
        models = sorted({str(p["model"]) for p in tp if p[factor] == x and p.get("model")})
        laws = contexts.get(task) or {}
        methods = set(laws)
        flags = []
        entry: dict[str, Any] = {
            "task": task,
            factor: x,
            "model": models[0] if len(models) == 1 else None,
            "data_size": d,
            "law": law or "auto",
            "best": None,
            "p_best": None,
            "n_draws": None,
            "ranking": [],
            "flips": [],
        }
        if laws:
            entry["law"] = law or laws_used(laws)
            entry["laws"] = {m: law_summary(fits, rec) for m, (_, rec) in laws.items()}
        if len(laws) >= 2:
            rec = recommend_in(laws, x, d)
            flagged = {
                f.get("method"): f
                for f in health["laws"]
                if f.get("task") == task
                and f.get("method") in methods
                and f.get("law") == laws[f["method"]][1]["law"]
                and f.get(factor, x) == x
            }
            widened = widened_p_best(laws, x, d, flagged)
            if widened is not None:
                probs, n_draws = widened
                for r in rec["ranking"]:
                    r["p_best"] = probs[r["method"]]
                rec["p_best"], rec["n_draws"] = probs[rec["best"]], n_draws
            capped = cap_p_best(rec, flagged)
            for r in rec["ranking"]:
                r["predictive_interval"] = _predictive(laws[r["method"]], x, d)
            entry.update(
                best=rec["best"],
                p_best=rec["p_best"],
                n_draws=rec["n_draws"],
                p_best_widened=sorted(flagged),
                p_best_draws=capped,
                ranking=[
                    {
                        k: r.get(k)
                        for k in (
                            "method",
                            "predicted_loss",
                            "interval",
                            "predictive_interval",
                            "p_best",
                            "measured_range",
                            "extrapolated",
                        )
                    }
                    for r in rec["ranking"]
                ],
                flips=rec["flips"],
            )
            for r in rec["ranking"]:
                if r.get("extrapolated"):
                    flags.append(
                        {
                            "kind": "data_size",
                            "method": r["method"],
                            "message": (
                                f"{fmt_size(d)} examples is outside the {method_label(r['method'])} "
                                f"runs at {_at(factor, x)} ({range_text(r.get('measured_range'))}): "
                                "its predicted loss there is extrapolated beyond the runs"
                            ),
                        }
                    )
            for fl in rec["flips"]:
                if fl.get("extrapolated") and d_min <= fl["data_size"] <= d:
                    flags.append({"kind": "flip", "message": _flip_message(task, factor, x, fl)})
        for c in health["curves"]:
            if c.get("task") == task and (not methods or c.get("method") in methods):
                flags.append({"kind": "curve", "message": c["message"]})
        for f in health["laws"]:
            if (
                f.get("task") == task
                and f.get("method") in methods
                and f.get("law") == laws[f["method"]][1]["law"]
            ):
                flags.append({"kind": "law", "message": f["message"]})
        entry["flags"] = flags
        entry["text"] = answer_text(entry, factor)
        out.append(entry)
    return {"factor": factor, "law": law or "auto", "tasks": out}


#: The highest P(best) an answer shows while the health checks say a compared method's law
#: does not extrapolate: its draws, even widened by its held-out error, claim more than the law
#: has shown it can deliver, so the answer reads "at most" this (``p_best_draws`` keeps the
#: share of draws).
P_BEST_FLAGGED_CAP = 0.9


def cap_p_best(rec: dict[str, Any], flagged: dict[str, Any]) -> float | None:
    """Cap a recommendation's ``p_best`` (and its best method's in ``ranking``) at
    :data:`P_BEST_FLAGGED_CAP` when a compared method's law is ``flagged`` by the health
    checks; returns the share of draws it replaced (None when nothing was capped)."""
    p = rec.get("p_best")
    if not flagged or p is None or p <= P_BEST_FLAGGED_CAP:
        return None
    rec["p_best"] = P_BEST_FLAGGED_CAP
    for r in rec["ranking"]:
        if r["method"] == rec["best"]:
            r["p_best"] = P_BEST_FLAGGED_CAP
    return float(p)


def law_summary(fits: list[dict[str, Any]], rec: dict[str, Any]) -> dict[str, Any]:
    """Why a method's law was used: ``{"law", "why", "cv_error", "delta_h", "noise",
    "others": [{"law", "cv_error", "delta_h"}]}`` (the other laws fitted to the same group)."""
    others = [
        {"law": f["law"], "cv_error": f.get("cv_error"), "delta_h": f.get("delta_h")}
        for f in fits
        if f["group"] == rec["group"] and f is not rec
    ]
    return {
        "law": rec["law"],
        "why": rec.get("why"),
        "cv_error": rec.get("cv_error"),
        "delta_h": rec.get("delta_h"),
        "noise": rec.get("noise"),
        "others": others,
    }


def _predictive(entry: tuple[Any, dict[str, Any]], x: float, d: float) -> list[float] | None:
    """95% predictive interval (nats/token) of one new run's loss at (``x``, ``d``): the law's
    draws plus one seed's noise and the law's lack of fit (its record's ``noise``)."""
    law, rec = entry
    noise = rec.get("noise") or {}
    var = (noise.get("seed_sd") or 0.0) ** 2 + (noise.get("lack_of_fit") or 0.0) ** 2
    iv = predictive_interval(law, np.array([x]), np.array([d]), var)
    return None if iv is None else [float(iv[0][0]), float(iv[1][0])]


def widened_p_best(
    laws: dict[str, tuple[Any, dict[str, Any]]],
    x: float,
    d: float,
    flagged: dict[str, dict[str, Any]],
    seed: int = 0,
) -> tuple[dict[str, float], int] | None:
    """P(best) at (``x``, ``d``) from the laws' draws, where the draws of each ``flagged``
    method (its law does not extrapolate: health) get Gaussian noise of its held-out error
    Delta_h (nats/token), so that an answer the health checks doubt cannot read P(best) 1.00;
    None when nothing is flagged or a law has no draws."""
    if not flagged:
        return None
    draws = [law.draw_predictions(np.array([x]), np.array([d])) for law, _ in laws.values()]
    if any(v is None for v in draws):
        return None
    r = min(len(v) for v in draws)
    rng = np.random.default_rng(seed)
    preds = []
    for (m, (_, rec)), v in zip(laws.items(), draws, strict=True):
        p = v[:r, 0]
        if m in flagged:
            p = p + rng.standard_normal(r) * float(rec.get("delta_h") or 0.0)
        preds.append(p)
    got = p_best_of(np.stack(preds))
    if got is None:
        return None
    return {m: float(v) for m, v in zip(laws, got[0], strict=True)}, got[1]


def _joint_contexts(fits: list[dict[str, Any]], law: str | None = None) -> list:
    """Per task, the methods' two-factor fits of ``law`` (see :func:`contexts_of`); ``law``
    None: each method's chosen law (:func:`ftscale.analysis.calibrate.choose`; methods may
    then differ in law)."""
    if law is None:
        out = contexts_of(
            [f for f in fits if f.get("chosen") and f["factor"] is not None], mixed=True
        )
        for _, laws in out:
            for m, (est, rec) in laws.items():
                laws[m] = (averaged(fits, est, rec), rec)
        return out
    return contexts_of([f for f in fits if f["law"] == law and f["factor"] is not None])


def averaged(fits: list[dict[str, Any]], est: Any, rec: dict[str, Any]) -> Any:
    """The chosen law ``est`` (of record ``rec``) with its draws pooled with those of the
    other laws fitted to the same group, by their ``weight``
    (:func:`ftscale.analysis.calibrate.set_weights`): a :class:`LawMixture` whose point
    predictions are the chosen law's; ``est`` itself where no other law has weight or
    draws."""
    from ftscale.laws.io import law_from_record
    from ftscale.laws.mixture import LawMixture

    others = [
        f
        for f in fits
        if f is not rec
        and f["group"] == rec["group"]
        and f["factor"] is not None
        and f.get("weight")
        and f.get("bootstrap_params")
    ]
    if not others or est.bootstrap_params_ is None or not rec.get("weight"):
        return est
    members = [(est, rec["weight"])] + [(law_from_record(f), f["weight"]) for f in others]
    return LawMixture(members, seed=int(rec.get("seed") or 0))


def laws_used(laws: dict[str, tuple[Any, dict[str, Any]]]) -> str:
    """The law (or per method, the laws) of a context's fits, as text."""
    names = {rec["law"] for _, rec in laws.values()}
    if len(names) == 1:
        return names.pop()
    return ", ".join(f"{m}: {rec['law']}" for m, (_, rec) in laws.items())


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
        for ctx, laws in _joint_contexts(fits, law)
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
    for ctx, laws in _joint_contexts(fits, law):
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
    for ctx, laws in _joint_contexts(fits, law):
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
