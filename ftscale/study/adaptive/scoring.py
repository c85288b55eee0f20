"""Candidates (the unfinished planned runs), their costs, and their scores: expected
uncertainty reduction per unit cost; the bootstrap block while the laws are not fittable."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.errors import UserError
from ftscale.study.adaptive.question import _factor_value
from ftscale.study.adaptive.uncertainty import DesignState, _metric, _preds, _uniform
from ftscale.study.spec import Study

#: Seed-averaged points a method needs after the hold-out before it counts as fittable
#: (the multiplicative law's 4 parameters plus 2, so the bootstrap has residuals to resample).
MIN_FIT_POINTS = 6
#: Simulated outcomes per candidate.
N_OUTCOMES = 24


def _held_out(study: Study, spec: dict[str, Any], x: float, points: list[dict]) -> bool:
    """Whether the fit would hold this run's point out (at or beyond the largest value of a
    ``fit.holdout_largest`` column among the finished points of its (task, method))."""
    group = [p for p in points if p["task"] == spec["task"] and p["method"] == spec["method"]]
    for col in study.fit.holdout_largest:
        value = spec["data_size"] if col == "data_size" else x if col == study.factor else None
        have = [float(p[col]) for p in group if p.get(col) is not None]
        if value is not None and (not have or value >= max(have)):
            return True
    return False


def candidate_costs(
    study: Study, specs: list[dict[str, Any]], measured: list[dict[str, Any]], xs: list[float]
) -> tuple[list[float], str]:
    """Cost per candidate and its units: core-seconds from :func:`estimate_runs` (times the
    run's threads) where every candidate has an estimate; else a relative cost
    model_size x data_size / 1e9 for all (units "relative")."""
    from ftscale.study.estimate import estimate_runs

    est = estimate_runs(specs, measured)["per_run"]
    if specs and all(e is not None and e > 0 for e in est):
        threads = [int(s.get("training", {}).get("threads", 1) or 1) for s in specs]
        return [float(e) * t for e, t in zip(est, threads, strict=True)], "core-seconds"
    return [x * float(s["data_size"]) / 1e9 for s, x in zip(specs, xs, strict=True)], "relative"


def _candidates(
    study: Study, store, planned, doc: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(unfinished planned runs as candidate rows, finished records)."""
    from ftscale.study.storage import FINISHED

    status = {r.run_key: r for r in store.runs([p.run_key for p in planned])}
    measured = [r.record for r in status.values() if r.status == "done" and r.record is not None]
    points = (doc or {}).get("points", [])
    rows = []
    for p in planned:
        run = status.get(p.run_key)
        if run is not None and run.status in FINISHED:
            continue
        x = (
            float(p.spec["pet_size"])
            if study.factor == "pet_size"
            else _factor_value(study, p.spec["model"], points)
        )
        if x is None:
            continue
        rows.append({"run_key": p.run_key, "spec": p.spec, "x": float(x)})
    costs, units = candidate_costs(
        study, [r["spec"] for r in rows], measured, [r["x"] for r in rows]
    )
    for r, c in zip(rows, costs, strict=True):
        r["cost"], r["cost_units"] = c, units
    return rows, measured


def score_candidates(
    state: DesignState,
    study: Study,
    candidates: list[dict[str, Any]],
    n_outcomes: int = N_OUTCOMES,
    seed: int = 0,
) -> tuple[float, list[dict[str, Any]]]:
    """(current uncertainty, candidates with ``expected_uncertainty``,
    ``expected_reduction`` and ``score`` = reduction per unit cost), by kernel-smoothed
    importance weighting over the draws (module docstring)."""
    metric = _metric(state)
    base = _uniform(state)
    u_now = float(metric.uncertainty({m: v[None, :] for m, v in base.items()})[0])
    rng = np.random.default_rng(seed)
    seeds_at: dict[tuple, int] = {}
    for p in state.points:
        seeds_at[(p["method"], p.get("model"), p.get("pet_size"), float(p["data_size"]))] = int(
            p.get("n_seeds") or 0
        )
    cache: dict[tuple, tuple[float, float]] = {}
    out = []
    for c in candidates:
        spec = c["spec"]
        row = dict(c)
        m = spec["method"]
        held = _held_out(study, spec, c["x"], state.points)
        row["held_out"] = held
        if spec["task"] != state.question.task or m not in state.theta or held:
            row.update(expected_uncertainty=u_now, expected_reduction=0.0, score=0.0)
            out.append(row)
            continue
        n_have = seeds_at.get((m, spec["model"], spec.get("pet_size"), float(spec["data_size"])), 0)
        key = (m, c["x"], float(spec["data_size"]), n_have)
        if key not in cache:
            mu = _preds(state, m, c["x"], np.array([float(spec["data_size"])]))[:, 0]
            good = np.isfinite(mu)
            mu = np.where(good, mu, np.nanmedian(mu))
            r = len(mu)
            h = 1.06 * float(np.std(mu)) * r**-0.2
            s2 = (1 + n_have) * state.sigma**2 + h**2
            k = rng.integers(0, r, size=n_outcomes)
            y = mu[k] + rng.normal(0.0, state.sigma, size=n_outcomes)
            logw = -((y[:, None] - mu[None, :]) ** 2) / (2 * s2)
            logw[:, ~good] = -np.inf
            w = np.exp(logw - logw.max(axis=1, keepdims=True))
            w /= w.sum(axis=1, keepdims=True)
            weights = {mm: np.broadcast_to(v, (n_outcomes, len(v))) for mm, v in base.items()}
            weights[m] = w
            u_new = float(np.mean(metric.uncertainty(weights)))
            cache[key] = (u_new, u_now - u_new)
        u_new, red = cache[key]
        row.update(
            expected_uncertainty=u_new,
            expected_reduction=red,
            score=max(red, 0.0) / max(c["cost"], 1e-12),
        )
        out.append(row)
    out.sort(key=lambda r: (-r["score"], r["cost"], r["run_key"]))
    return u_now, out


def bootstrap_design(
    study: Study,
    candidates: list[dict[str, Any]],
    points: list[dict[str, Any]],
    task: str,
    methods: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The cheapest block of runs (per method: the m cheapest models x the k smallest data
    sizes, first seed) after which every method has at least :data:`MIN_FIT_POINTS` fitted
    points over two factor values and two data sizes; already finished points count."""
    chosen = []
    seed0 = study.seeds[0]
    for method in methods:
        have = {
            (p.get("model"), float(p["data_size"]))
            for p in points
            if p["task"] == task and p["method"] == method
        }
        cands = [
            c
            for c in candidates
            if c["spec"]["task"] == task
            and c["spec"]["method"] == method
            and c["spec"]["seed"] == seed0
        ]
        by_point = {(c["spec"]["model"], float(c["spec"]["data_size"])): c for c in cands}
        model_x = {c["spec"]["model"]: c["x"] for c in cands}
        for p in points:
            if p["task"] == task and p["method"] == method and p.get(study.factor) is not None:
                model_x.setdefault(p["model"], float(p[study.factor]))
        models = sorted(model_x, key=lambda mo: model_x[mo])
        sizes = sorted(float(d) for d in study.data_sizes[method])
        best: tuple[float, list] | None = None
        for nm in range(2, len(models) + 1):
            for nd in range(2, len(sizes) + 1):
                block = [(mo, d) for mo in models[:nm] for d in sizes[:nd]]
                fit = _fit_points(study, block, model_x)
                if (
                    len(fit) < MIN_FIT_POINTS
                    or len({mo for mo, _ in fit}) < 2
                    or len({d for _, d in fit}) < 2
                ):
                    continue
                need = [by_point[b] for b in block if b not in have and b in by_point]
                if len(need) + len([b for b in block if b in have]) < len(block):
                    continue  # some point neither finished nor plannable (failed)
                cost = sum(c["cost"] for c in need)
                if best is None or cost < best[0]:
                    best = (cost, need)
        if best is None:
            raise UserError(
                f"{task}/{method}: the grid cannot give {MIN_FIT_POINTS} fitted points over two "
                "models and two data sizes (after fit.holdout_largest); add models or data sizes"
            )
        chosen += best[1]
    for c in chosen:
        c.update(expected_reduction=None, expected_uncertainty=None, score=None, held_out=False)
    return chosen


def _fit_points(study: Study, block: list[tuple[str, float]], model_x: dict[str, float]):
    """The points of ``block`` the fit keeps after ``fit.holdout_largest``."""
    keep = list(block)
    for col in study.fit.holdout_largest:
        if col == "data_size":
            top = max(d for _, d in block)
            keep = [b for b in keep if b[1] != top]
        elif col == study.factor:
            top = max(model_x[mo] for mo, _ in block)
            keep = [b for b in keep if model_x[b[0]] != top]
    return keep
