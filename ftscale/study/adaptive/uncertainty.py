"""The design state (each method's bootstrap draws) and the question's uncertainty under
weights over those draws: 1 - P(best) for recommend, the critical interval's width."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftscale.study.adaptive.question import Question

#: Data-size range (examples) searched for critical data sizes; pairs of draws that do not
#: cross inside it are placed at its ends (log10 0 or 12).
CRIT_RANGE = (1.0, 1e12)
#: Draws per method the design uses (the first ones): the critical question compares every
#: pair of draws, R^2 of them on a grid of data sizes, so memory grows with R^2.
MAX_DRAWS = 200


@dataclass
class DesignState:
    """The current fits seen through a question: per method the free-parameter draws."""

    question: Question
    laws: dict[str, Any]  # method -> ScalingLaw (with bootstrap draws)
    theta: dict[str, np.ndarray]  # method -> (R, P) free parameters
    sigma: float  # seed noise, nats/token
    points: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def seed_sigma(points: list[dict[str, Any]], fits: list[dict[str, Any]]) -> float:
    """Seed noise (nats/token): the pooled seed standard deviation over points with two or
    more seeds (ddof 1), else the fits' mean absolute residual, floored at 1e-6."""
    num, den = 0.0, 0
    for p in points:
        n = int(p.get("n_seeds") or 0)
        sd = p.get("loss_std")
        if n >= 2 and sd is not None and math.isfinite(sd):
            num += sd * sd * n  # loss_std is ddof 0
            den += n - 1
    if den:
        return max(math.sqrt(num / den), 1e-6)
    res = [f["delta_e"] for f in fits if f.get("delta_e") is not None]
    return max(float(np.mean(res)) if res else 1e-3, 1e-6)


def design_state(question: Question, doc: dict[str, Any]) -> tuple[DesignState | None, list[str]]:
    """The question's methods' draws from a fits document, each method's from its chosen law
    (:func:`ftscale.laws.io.chosen_records`); (None, the methods lacking a fit with draws) when
    some method cannot be scored yet."""
    from ftscale.laws.io import chosen_records, law_from_record
    from ftscale.laws.recommend import _draw_theta

    laws, theta, missing = {}, {}, []
    recs = chosen_records(doc["fits"], question.task)
    for method in question.methods:
        rec = recs.get((question.task, method))
        if rec is None or not rec.get("bootstrap_params"):
            missing.append(method)
            continue
        law = law_from_record(rec)
        th = _draw_theta(law, np.asarray(law.bootstrap_params_, dtype=float))
        th = th[np.isfinite(th).all(axis=1)][:MAX_DRAWS]
        if len(th) < 2:
            missing.append(method)
            continue
        laws[method], theta[method] = law, th
    if missing:
        return None, missing
    pts = [p for p in doc.get("points", []) if p["task"] == question.task]
    return DesignState(question, laws, theta, seed_sigma(pts, doc["fits"]), pts), []


def _preds(state: DesignState, method: str, x: float, d: np.ndarray) -> np.ndarray:
    """Draws' predicted losses (R, G) of ``method`` at factor ``x`` and data sizes ``d``."""
    law = state.laws[method]
    logd = np.log(np.asarray(d, dtype=float))
    with np.errstate(all="ignore"):
        lp, _ = law.log_pred(
            state.theta[method], law.map_log_x(np.full(logd.shape, math.log(x))), logd
        )
    return np.exp(lp)


def _uniform(state: DesignState) -> dict[str, np.ndarray]:
    return {m: np.full(len(t), 1.0 / len(t)) for m, t in state.theta.items()}


class _Recommend:
    """The design's objective for recommend: 1 - P(best) of the method most likely best, under
    per-method draw weights, every combination of the methods' draws weighed (draws of
    different methods are independent fits). A smooth objective for ranking candidate runs;
    the answer's P(best) itself is :func:`ftscale.laws.recommend.p_best` (paired draws)."""

    def __init__(self, state: DesignState):
        q = state.question
        self.methods = list(q.methods)
        self.pred = {}
        for m in self.methods:
            p = _preds(state, m, q.x, np.array([q.data_size]))[:, 0]
            self.pred[m] = np.where(np.isfinite(p), p, np.inf)
        self.order = {m: np.argsort(self.pred[m], kind="stable") for m in self.methods}
        self.sorted = {m: self.pred[m][self.order[m]] for m in self.methods}

    def p_best(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        """(S, methods) probability of each method being best; weights: method -> (S, R)."""
        s = next(iter(weights.values())).shape[0]
        cum = {m: np.cumsum(weights[m][:, self.order[m]], axis=1) for m in self.methods}
        out = np.zeros((s, len(self.methods)))
        for a_i, a in enumerate(self.methods):
            prod = weights[a].copy()  # (S, R_a): w_a(i) * prod_b P(L_b > L_a(i))
            for b in self.methods:
                if b == a:
                    continue
                idx = np.searchsorted(self.sorted[b], self.pred[a], side="right")
                c = np.concatenate([np.zeros((s, 1)), cum[b]], axis=1)[:, idx]
                prod *= np.clip(1.0 - c, 0.0, 1.0)
            out[:, a_i] = prod.sum(axis=1)
        return out

    def uncertainty(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        return 1.0 - self.p_best(weights).max(axis=1)


class _Critical:
    """Width (log10 examples) of the weighted 95% interval of the critical data size."""

    def __init__(self, state: DesignState, n_grid: int = 241):
        q = state.question
        self.a, self.b = q.methods[:2]
        logd = np.linspace(math.log10(CRIT_RANGE[0]), math.log10(CRIT_RANGE[1]), n_grid)
        pa = _preds(state, self.a, q.x, 10**logd)  # (Ra, G)
        pb = _preds(state, self.b, q.x, 10**logd)  # (Rb, G)
        v = pa[:, None, :] - pb[None, :, :]  # (Ra, Rb, G)
        ok = np.isfinite(v).all(axis=2)
        v = np.where(np.isfinite(v), v, 0.0)
        sign = np.sign(v)
        change = sign[:, :, :-1] * sign[:, :, 1:] < 0
        has = change.any(axis=2) & ok
        first = change.argmax(axis=2)
        i0 = np.clip(first, 0, n_grid - 2)
        v0 = np.take_along_axis(v, i0[..., None], axis=2)[..., 0]
        v1 = np.take_along_axis(v, (i0 + 1)[..., None], axis=2)[..., 0]
        frac = np.where(v0 != v1, v0 / (v0 - v1), 0.5)
        step = logd[1] - logd[0]
        cross = logd[i0] + frac * step
        # No crossing in range: before-crossing sign kept throughout -> beyond the top end.
        pre = np.sign(np.median(sign[has][:, 0])) if has.any() else 1.0
        beyond = np.where(sign[:, :, 0] == pre, logd[-1], logd[0])
        self.values = np.where(has, cross, beyond).ravel()  # (Ra * Rb,)
        self.order = np.argsort(self.values, kind="stable")
        self.sorted = self.values[self.order]
        self.ra, self.rb = pa.shape[0], pb.shape[0]
        self.p_crossing = float(has.mean())

    def uncertainty(self, weights: dict[str, np.ndarray]) -> np.ndarray:
        wa, wb = weights[self.a], weights[self.b]  # (S, Ra), (S, Rb)
        joint = (wa[:, :, None] * wb[:, None, :]).reshape(wa.shape[0], -1)[:, self.order]
        cum = np.cumsum(joint, axis=1)
        cum /= cum[:, -1:]
        lo = np.array([np.searchsorted(c, 0.025) for c in cum])
        hi = np.array([np.searchsorted(c, 0.975) for c in cum])
        n = len(self.sorted) - 1
        return self.sorted[np.minimum(hi, n)] - self.sorted[np.minimum(lo, n)]

    def median(self, weights: dict[str, np.ndarray]) -> float:
        wa, wb = weights[self.a], weights[self.b]
        joint = (wa[:, None] * wb[None, :]).ravel()[self.order]
        cum = np.cumsum(joint) / joint.sum()
        return float(self.sorted[min(np.searchsorted(cum, 0.5), len(self.sorted) - 1)])


def _metric(state: DesignState) -> _Recommend | _Critical:
    return _Critical(state) if state.question.kind == "critical" else _Recommend(state)


def current_answer(state: DesignState) -> dict[str, Any]:
    """The question's answer now: ``{"uncertainty", ...}``; recommend adds ``best`` and
    ``p_best``, critical adds ``critical_data_size`` (median, examples), ``width_log10`` and
    ``p_crossing``."""
    metric = _metric(state)
    w = {m: v[None, :] for m, v in _uniform(state).items()}
    u = float(metric.uncertainty(w)[0])
    if isinstance(metric, _Recommend):
        # The answer's P(best) is the recommendation's (one function: the share of paired
        # draws in which the method is lowest); the design's uncertainty above weighs every
        # combination of the methods' draws, a smooth objective for ranking runs.
        from ftscale.laws.recommend import p_best

        q = state.question
        probs, _ = p_best(state.laws, q.x, q.data_size)
        if probs is None:
            pb = metric.p_best(w)[0]
            probs = dict(zip(metric.methods, map(float, pb), strict=True))
        best = max(metric.methods, key=lambda m: probs[m])
        return {"uncertainty": u, "best": best, "p_best": probs[best]}
    med = metric.median(_uniform(state))
    return {
        "uncertainty": u,
        "width_log10": u,
        "critical_data_size": 10**med,
        "p_crossing": metric.p_crossing,
    }
