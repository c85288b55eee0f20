"""Active study design: the next runs that most sharpen the study's answer.

A *question* names the quantity whose uncertainty the study should shrink:

- ``recommend`` (default): the probability that the recommended method is **not** the best at
  model M and data size D (examples); default M the study's largest model, D the largest data
  size of the grid that every method runs (fixed, so that the question does not move as the
  design adds runs).
- ``critical m1,m2``: the width, in log10 of examples, of the 95% interval of the critical data
  size between methods m1 and m2 at model M (default the largest model).

Both are read off the bootstrap draws of each method's multiplicative fit (the study's fits
document, :func:`ftscale.analysis.study.fit_study`). Each method's draws are treated as an
(unnormalised) sample of its law's uncertainty, independent across methods: method a's draw i
and method b's draw j form a joint draw with weight w_a(i) w_b(j).

Scoring a candidate run (an unfinished planned run of the grid) is *kernel-smoothed importance
weighting* over the existing draws, not a refit:

1. its outcome is simulated K times: a draw k of the method's law is picked and the loss is its
   prediction at the run's (model, data size) plus Gaussian seed noise of the study's observed
   seed standard deviation ``sigma`` (nats/token; pooled over points with two or more seeds,
   else the fits' mean absolute residual);
2. each simulated loss y reweights the method's draws by exp(-(y - mu_i)^2 / (2 s^2)), where
   mu_i is draw i's prediction there and s^2 = n_eff sigma^2 + h^2: ``n_eff`` = 1 + the seeds
   the point already has (the fit weighs each seed mean once, so one more seed of n + 1 moves
   the fitted point by 1/(n + 1) of its deviation), and h the kernel bandwidth
   1.06 sd(mu) R^-1/5 (Silverman's rule over the R draws), which keeps the weights from
   collapsing onto one draw when sigma is far below the draws' spread;
3. the question's uncertainty is recomputed under those weights and averaged over the K
   outcomes; the expected reduction is the current uncertainty minus that average.

Candidates are ranked by expected reduction per unit cost. Cost: :func:`estimate_runs` (mean
measured seconds of the same (model, method), else scaled by model size) times the run's
threads, in core-seconds; where nothing was measured, a relative cost proportional to
model_size x data_size (the units are then relative, ``cost_units`` says which). Runs that the
fit would hold out (at or beyond the largest value of a ``fit.holdout_largest`` column of their
(task, method)) are scored 0: they test the laws but do not sharpen them.

Before every compared method has a multiplicative fit with draws, :func:`suggest` proposes the
cheapest block of runs (the m cheapest models x the k smallest data sizes, first seed) that
leaves at least ``MIN_FIT_POINTS`` fitted points, two factor values and two data sizes per
method after the hold-out.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ftscale.errors import UserError
from ftscale.study.spec import Study

#: Seed-averaged points a method needs after the hold-out before it counts as fittable
#: (the multiplicative law's 4 parameters plus 2, so the bootstrap has residuals to resample).
MIN_FIT_POINTS = 6
#: Simulated outcomes per candidate.
N_OUTCOMES = 24
#: Data-size range (examples) searched for critical data sizes; pairs of draws that do not
#: cross inside it are placed at its ends (log10 0 or 12).
CRIT_RANGE = (1.0, 1e12)
#: Draws per method the design uses (the first ones): the critical question compares every
#: pair of draws, R^2 of them on a grid of data sizes, so memory grows with R^2.
MAX_DRAWS = 200
_LAW = "multiplicative"


@dataclass(frozen=True)
class Question:
    """What the adaptive design sharpens (see the module docstring)."""

    kind: str  # "recommend" | "critical"
    task: str
    model: str
    x: float  # the model's factor value
    data_size: float | None = None  # recommend: examples
    methods: tuple[str, ...] = ()

    def text(self) -> str:
        """The question in the ``--question`` syntax."""
        if self.kind == "critical":
            return f"critical {','.join(self.methods)} at model={self.model} task={self.task}"
        return (
            f"recommend at model={self.model} data_size={self.data_size:g} task={self.task} "
            f"among {','.join(self.methods)}"
        )


@dataclass
class DesignState:
    """The current fits seen through a question: per method the free-parameter draws."""

    question: Question
    laws: dict[str, Any]  # method -> ScalingLaw (with bootstrap draws)
    theta: dict[str, np.ndarray]  # method -> (R, P) free parameters
    sigma: float  # seed noise, nats/token
    points: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


# -- questions ---------------------------------------------------------------------------


_KV = re.compile(r"^(model|data_size|task|d|m)=(\S+)$")


def parse_question(text: str | None, study: Study) -> dict[str, Any]:
    """Parse ``--question`` text into ``{"kind", "task", "model", "data_size", "methods"}``
    (None where the study's default applies); bad text, an unknown method, model or task is a
    :class:`UserError`."""
    words = (text or "recommend").replace(" at ", " ").split()
    if not words or words[0] not in ("recommend", "critical"):
        raise UserError(
            f"--question: expected 'recommend at model=M data_size=D' or 'critical m1,m2 at "
            f"model=M', got {text!r}"
        )
    out: dict[str, Any] = {
        "kind": words[0],
        "task": None,
        "model": None,
        "data_size": None,
        "methods": None,
    }
    rest = words[1:]
    if out["kind"] == "critical":
        if not rest or "=" in rest[0]:
            raise UserError("--question: 'critical' needs two methods, e.g. 'critical fmt,lora'")
        methods = tuple(m for m in rest[0].split(",") if m)
        if len(methods) != 2 or methods[0] == methods[1]:
            raise UserError(f"--question: 'critical' needs two different methods, got {rest[0]!r}")
        out["methods"] = methods
        rest = rest[1:]
    for w in rest:
        if w == "at":
            continue
        m = _KV.match(w)
        if not m:
            raise UserError(f"--question: cannot read {w!r} (expected model=M, data_size=D)")
        key = {"m": "model", "d": "data_size"}.get(m.group(1), m.group(1))
        out[key] = m.group(2)
    if out["kind"] == "critical" and out["data_size"] is not None:
        raise UserError("--question: 'critical' takes no data_size (it is the answer)")
    for method in out["methods"] or ():
        if method not in study.methods:
            raise UserError(
                f"--question: unknown method {method!r} (study methods: {', '.join(study.methods)})"
            )
    if out["model"] is not None and out["model"] not in study.models:
        raise UserError(
            f"--question: unknown model {out['model']!r} (study models: {', '.join(study.models)})"
        )
    if out["task"] is not None and out["task"] not in study.tasks:
        raise UserError(
            f"--question: unknown task {out['task']!r} (study tasks: {', '.join(study.tasks)})"
        )
    if out["data_size"] is not None:
        try:
            d = float(out["data_size"])
        except ValueError:
            d = math.nan
        if not (d > 0 and math.isfinite(d)):
            raise UserError(f"--question: data_size must be a positive number, got {d!r}")
        out["data_size"] = d
    return out


def _factor_value(study: Study, model: str, points: list[dict[str, Any]]) -> float | None:
    """The factor value of ``model``: from its finished points, else its recorded size."""
    for p in points:
        if p.get("model") == model and p.get(study.factor) is not None:
            return float(p[study.factor])
    return _registry_value(model, study.factor)


def _registry_value(model: str, factor: str) -> float | None:
    """``factor`` (model_size or pretrain_tokens) of a model without a finished run: the
    ``sim-<size>`` names of :mod:`ftscale.testing.simulated`, else an ftscale checkpoint's
    metadata (None otherwise: a foreign model is sized by its first finished run)."""
    if model.startswith("sim-") and factor == "model_size":
        try:
            return float(model.split("-", 1)[1])
        except ValueError:
            return None
    try:
        from ftscale.models.registry import _find_by_name, _info_from_meta, _read_meta

        path = _find_by_name(model)
        if path is None:
            return None
        value = getattr(_info_from_meta(path, _read_meta(path)), factor, None)
        return None if value is None else float(value)
    except (UserError, OSError, AttributeError):
        return None


def resolve_question(parsed: dict[str, Any], study: Study, doc: dict[str, Any]) -> Question:
    """Fill a parsed question's defaults from the study and its fits document."""
    points = doc.get("points", [])
    task = parsed["task"] or study.tasks[0]
    model = parsed["model"]
    if model is None:
        sized = [(_factor_value(study, m, points), m) for m in study.models]
        known = [(x, m) for x, m in sized if x is not None]
        model = max(known)[1] if known else study.models[-1]
    x = _factor_value(study, model, points)
    if x is None:
        raise UserError(
            f"--question: {study.factor} of model {model!r} unknown (no finished run of it)"
        )
    methods = parsed["methods"] or study.methods
    data_size = parsed["data_size"]
    if parsed["kind"] == "recommend" and data_size is None:
        # the largest data size of the grid that every method runs (not of the runs so far:
        # the question must not move as the design adds runs)
        data_size = float(min(max(study.data_sizes[m]) for m in methods))
    return Question(
        kind=parsed["kind"],
        task=task,
        model=model,
        x=float(x),
        data_size=None if data_size is None else float(data_size),
        methods=tuple(methods),
    )


# -- state and uncertainty ---------------------------------------------------------------


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
    """The question's methods' draws from a fits document; (None, the methods lacking a fit
    with draws) when some method cannot be scored yet."""
    from ftscale.laws.io import law_from_record
    from ftscale.laws.recommend import _draw_theta

    laws, theta, missing = {}, {}, []
    for method in question.methods:
        rec = next(
            (
                f
                for f in doc["fits"]
                if f["law"] == _LAW
                and f["group"].get("task") == question.task
                and f["group"].get("method") == method
                and f.get("factor") is not None
            ),
            None,
        )
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
        lp, _ = law.log_pred(state.theta[method], np.full(logd.shape, math.log(x)), logd)
    return np.exp(lp)


def _uniform(state: DesignState) -> dict[str, np.ndarray]:
    return {m: np.full(len(t), 1.0 / len(t)) for m, t in state.theta.items()}


class _Recommend:
    """1 - P(best) of the method most likely best, under per-method draw weights."""

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
        pb = metric.p_best(w)[0]
        i = int(np.argmax(pb))
        return {"uncertainty": u, "best": metric.methods[i], "p_best": float(pb[i])}
    med = metric.median(_uniform(state))
    return {
        "uncertainty": u,
        "width_log10": u,
        "critical_data_size": 10**med,
        "p_crossing": metric.p_crossing,
    }


# -- candidates ---------------------------------------------------------------------------


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


# -- stopping criteria --------------------------------------------------------------------

_CRIT = re.compile(r"^\s*(p_best|width|uncertainty)\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*$")


def parse_until(text: str, kind: str) -> tuple[str, str, float]:
    """``"p_best >= 0.95"`` (recommend), ``"width <= 0.3"`` (critical; log10 examples) or
    ``"uncertainty <= X"`` -> (metric, op, value)."""
    m = _CRIT.match(text or "")
    if not m:
        raise UserError(
            f"--until: expected 'p_best >= P', 'width <= W' or 'uncertainty <= U', got {text!r}"
        )
    metric, op, value = m.group(1), m.group(2), float(m.group(3))
    if metric == "p_best" and kind != "recommend":
        raise UserError("--until p_best needs a recommend question")
    if metric == "width" and kind != "critical":
        raise UserError("--until width needs a critical question")
    return metric, op, value


def criterion_holds(current: dict[str, Any] | None, crit: tuple[str, str, float]) -> bool:
    """Whether the answer ``current`` (:func:`current_answer`) meets ``crit``."""
    if current is None:
        return False
    metric, op, value = crit
    v = current["p_best"] if metric == "p_best" else current["uncertainty"]
    return {">=": v >= value, "<=": v <= value, ">": v > value, "<": v < value}[op]


# -- the adaptive loop --------------------------------------------------------------------

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

    kind = parse_question(question, study)["kind"]
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
