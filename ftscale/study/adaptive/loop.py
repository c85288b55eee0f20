"""The design step (:func:`suggest`) and the adaptive loop (:func:`run_adaptive`)."""

from __future__ import annotations

from typing import Any

from ftscale.errors import UserError
from ftscale.study.adaptive.question import parse_question, resolve_question
from ftscale.study.adaptive.scoring import _candidates, bootstrap_design, score_candidates
from ftscale.study.adaptive.stop import criterion_holds, parse_until
from ftscale.study.adaptive.uncertainty import current_answer, design_state
from ftscale.study.spec import Study


def _spread(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """The ``k`` best rows, at most one per (task, method, model, PET size, data size) point
    (another seed of a point already chosen is redundant within a round)."""
    seen, out = set(), []
    for r in rows:
        s = r["spec"]
        key = (s["task"], s["method"], s["model"], s.get("pet_size"), s["data_size"])
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
        if len(out) == k:
            break
    return out


def suggest(
    study: Study,
    store,
    doc: dict[str, Any] | None,
    question: str | None = None,
    n: int = 5,
    budget: float | None = None,
    data_hashes: dict[str, str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The ``n`` best next runs for ``question`` (``--question`` text; None: recommend).

    ``doc`` is the study's fits document (None: nothing fittable yet). ``budget`` caps the
    suggestions' summed cost (core-seconds; a UserError when costs are only relative).
    Returns ``{"question", "mode" ("sharpen" | "make_fittable" | "exhausted"), "current",
    "sigma", "cost_units", "suggestions": [{"run_key", "task", "method", "model", "pet_size",
    "data_size", "seed", "cost", "expected_uncertainty", "expected_reduction", "score"}],
    "notes"}``.
    """
    from ftscale.study.plan import plan_study

    planned = plan_study(study, data_hashes)
    parsed = parse_question(question, study)
    doc = doc or {"fits": [], "points": []}
    q = resolve_question(parsed, study, doc)
    cands, _ = _candidates(study, store, planned, doc)
    units = cands[0]["cost_units"] if cands else "relative"
    if budget is not None and units != "core-seconds":
        raise UserError(
            "--budget-core-hours: no finished run has a measured time, so costs are only "
            "relative (model_size x data_size); run some runs first"
        )
    notes = []
    if study.fit.holdout_largest:
        notes.append(
            f"the fits hold out the largest {', '.join(study.fit.holdout_largest)} "
            "(fit.holdout_largest): runs there test the laws but do not sharpen them; set "
            "fit.holdout_largest = [] for an adaptive design"
        )
    state, missing = design_state(q, doc)
    current = None
    if not cands:
        mode, rows = "exhausted", []
    elif state is None:
        mode = "make_fittable"
        notes.append(
            f"too few runs to fit {', '.join(missing)}: these are the cheapest runs that make "
            "the laws fittable"
        )
        rows = bootstrap_design(study, cands, doc.get("points", []), q.task, q.methods)
        rows.sort(key=lambda r: (r["cost"], r["run_key"]))
    else:
        mode = "sharpen"
        current = current_answer(state)
        _, scored = score_candidates(state, study, cands, seed=seed)
        rows = _spread([r for r in scored if r["expected_reduction"] > 0], max(n, 1) * 50)
        if not rows:
            notes.append("no unfinished run is expected to sharpen the answer")
    if mode != "make_fittable":
        rows = rows[: max(n, 0)]
    if budget is not None:
        kept, total = [], 0.0
        for r in rows:
            if total + r["cost"] <= budget:
                kept.append(r)
                total += r["cost"]
        rows = kept
    return {
        "study": study.name,
        "question": q.text(),
        "kind": q.kind,
        "mode": mode,
        "current": current,
        "sigma": None if state is None else state.sigma,
        "cost_units": units,
        "suggestions": [_public(r) for r in rows],
        "notes": notes,
    }


def _public(r: dict[str, Any]) -> dict[str, Any]:
    s = r["spec"]
    return {
        "run_key": r["run_key"],
        **{k: s.get(k) for k in ("task", "method", "model", "pet_size", "data_size", "seed")},
        "cost": r["cost"],
        "expected_uncertainty": r.get("expected_uncertainty"),
        "expected_reduction": r.get("expected_reduction"),
        "score": r.get("score"),
        "held_out": r.get("held_out", False),
    }


#: Stop criteria when ``--until`` is not given.
DEFAULT_UNTIL = {"recommend": "p_best >= 0.95", "critical": "width <= 0.2"}


def fit_or_none(fit, study: Study, store, data_hashes: dict[str, str] | None = None):
    """``fit(study, store, data_hashes)`` (the fitting stage's
    :func:`ftscale.analysis.study.fit_study`, passed in: the study stage does not import the
    analysis stage), or None while no run has finished."""
    try:
        return fit(study, store, data_hashes)
    except UserError as exc:
        if "no finished runs" in str(exc):
            return None
        raise


def _spent(store, keys: list[str], estimates: dict[str, float], units: str) -> float:
    """Cost of runs ``keys`` after they ran: measured train_seconds x threads (core-seconds)
    where the costs are in core-seconds and the record has a time, else their estimate."""
    total = 0.0
    for run in store.runs(keys):
        secs = (run.record or {}).get("train_seconds")
        if units == "core-seconds" and isinstance(secs, int | float) and secs > 0:
            threads = int(run.spec.get("training", {}).get("threads", 1) or 1)
            total += float(secs) * threads
        else:
            total += estimates.get(run.run_key, 0.0)
    return total


def _core_seconds(store, keys: list[str]) -> float:
    """Measured core-seconds (train_seconds x threads) of the runs ``keys`` that recorded a
    time: what they cost, whatever units their estimates were in."""
    total = 0.0
    for run in store.runs(keys):
        secs = (run.record or {}).get("train_seconds")
        if isinstance(secs, int | float) and secs > 0:
            total += float(secs) * int(run.spec.get("training", {}).get("threads", 1) or 1)
    return total


def run_adaptive(
    study: Study,
    store_path,
    run_keys,
    fit,
    *,
    question: str | None = None,
    until: str | None = None,
    max_cost: float | None = None,
    round_size: int = 1,
    data_hashes: dict[str, str] | None = None,
    max_rounds: int = 10_000,
    progress=None,
) -> dict[str, Any]:
    """Rounds of :func:`suggest` (``round_size`` runs each; the whole block while the laws are
    not fittable yet), each run by ``run_keys(set_of_run_keys)`` (the CLI passes
    :func:`ftscale.study.runner.run_study` with ``only``), refitting after each round with
    ``fit`` (:func:`ftscale.analysis.study.fit_study`; see :func:`fit_or_none`), until
    ``until`` holds (default :data:`DEFAULT_UNTIL`), ``max_cost`` (in the candidates' cost
    units; core-seconds once runs have measured times) would be exceeded, or no candidate is
    left. Returns ``{"stopped": "criterion" | "budget" | "exhausted" | "no_gain" |
    "max_rounds", "rounds": [...], "spent", "cost_units", "core_seconds", "current",
    "question", "until"}``: ``spent`` in the candidates' cost units (what a budget is held
    to), ``core_seconds`` the measured train_seconds x threads of the runs that ran."""
    from ftscale.study.storage import open_store

    kind = parse_question(question, study).kind
    until = until or DEFAULT_UNTIL[kind]
    crit = parse_until(until, kind)
    rounds: list[dict[str, Any]] = []
    spent, units, stopped, current, qtext = 0.0, "relative", "max_rounds", None, question
    measured = 0.0
    for i in range(max_rounds):
        with open_store(store_path) as store:
            doc = fit_or_none(fit, study, store, data_hashes)
            out = suggest(study, store, doc, question, n=round_size, data_hashes=data_hashes)
        qtext, units, current = out["question"], out["cost_units"], out["current"]
        if out["mode"] == "sharpen" and criterion_holds(current, crit):
            stopped = "criterion"
            break
        rows = out["suggestions"]
        if not rows:
            stopped = "exhausted" if out["mode"] == "exhausted" else "no_gain"
            break
        if max_cost is not None:
            room = max_cost - spent
            kept, total = [], 0.0
            for r in rows:
                if total + r["cost"] <= room:
                    kept.append(r)
                    total += r["cost"]
            if not kept:
                stopped = "budget"
                break
            rows = kept
        keys = [r["run_key"] for r in rows]
        run_keys(set(keys))
        with open_store(store_path) as store:
            cost = _spent(store, keys, {r["run_key"]: r["cost"] for r in rows}, units)
            measured += _core_seconds(store, keys)
        spent += cost
        rounds.append(
            {
                "round": i + 1,
                "mode": out["mode"],
                "runs": len(keys),
                "cost": cost,
                "uncertainty_before": None if current is None else current["uncertainty"],
            }
        )
        if progress is not None:
            progress(rounds[-1], current)
    else:
        with open_store(store_path) as store:
            doc = fit_or_none(fit, study, store, data_hashes)
            out = suggest(study, store, doc, question, n=1, data_hashes=data_hashes)
        current = out["current"]
    return {
        "study": study.name,
        "question": qtext,
        "until": until,
        "stopped": stopped,
        "criterion_met": criterion_holds(current, crit),
        "rounds": rounds,
        "runs": sum(r["runs"] for r in rounds),
        "spent": spent,
        "core_seconds": measured,
        "cost_units": units,
        "current": current,
    }
