"""The study's answer (:func:`answer_of`): per task, the recommended method at the study's
largest factor value and data size, with P(best) from the laws' draws (pooled across laws by
their weights: :func:`ftscale.analysis.compare.averaged`), its predictive intervals, and the flags that qualify it;
P(best) is capped while a compared law does not extrapolate (:func:`cap_p_best`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.analysis.calibrate import predictive_interval
from ftscale.analysis.compare import chosen_contexts, recommend_in
from ftscale.analysis.health import method_label, range_text
from ftscale.analysis.prose import _at, _flip_message, answer_text
from ftscale.laws.recommend import p_best_of
from ftscale.textfmt import fmt_size


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
    contexts = {ctx.get("task"): laws for ctx, laws in chosen_contexts(fits, law=law)}
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


def laws_used(laws: dict[str, tuple[Any, dict[str, Any]]]) -> str:
    """The law (or per method, the laws) of a context's fits, as text."""
    names = {rec["law"] for _, rec in laws.values()}
    if len(names) == 1:
        return names.pop()
    return ", ".join(f"{m}: {rec['law']}" for m, (_, rec) in laws.items())
