"""The confident-flip rule: budget-best unless the profile likelihoods are confident of a flip.

Each candidate's losses at data sizes up to a budget are fitted with a one-factor law (the
rectified form by default) and extrapolated to the target data size. Small-data points often sit
in the flat "pre-power" phase, where a model's pretraining already covers what a few examples
teach: the rectified form L = B/(D_l + D^beta) + E bends from that plateau into the power law, so
the plateau does not masquerade as a slow curve.

Extrapolating 10x past the last point, a 4-parameter fit trades E against beta: noise of a few
thousandths of a nat moves the prediction by hundredths, and ranking by the bare extrapolation
loses to the naive "best loss at the budget wins". :func:`select_model` therefore starts from
the budget-best and moves to another candidate only when confident: each candidate's prediction
comes with a confidence distribution (the profile likelihood of its loss at the target, with the
noise estimated from the residuals of all candidates), and the flip needs a confidence of 0.9
that the other candidate ends lower. (The ``confident-flip`` selection method; ftscale's
default before the methods of issue 12.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from ftscale.errors import UserError
from ftscale.laws.registry import get_law


def predict_at_target(
    D: np.ndarray, L: np.ndarray, target: float, law: str = "rectified", **hyper
) -> tuple[float, bool]:
    """Fit a one-factor ``law`` to losses ``L`` (nats/token) at data sizes ``D`` (examples) and
    return (predicted loss at ``target`` examples, converged)."""
    cls = get_law(law)
    if cls.n_factors != 1:
        raise UserError(f"model selection needs a one-factor law (power, rectified), not {law}")
    import warnings

    # One polish: selection fits are many and small; the batched phase already ran every start.
    hyper = {"n_polish": 1, "max_iter": 100, **hyper}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = cls(**hyper).fit(None, D, L)
    return float(fitted.predict(None, target)), bool(fitted.converged_)


# -- the profile of the loss at the target -------------------------------------------------------
#
# Both one-factor forms are L(D) = B * h(D) + E with h(D) = 1 / (D_t^beta + D^beta): the rectified
# law with D_l = D_t^beta (D_t, in examples, is where the plateau ends), the power law with D_t = 0
# (A = B). For a given shape (beta, D_t) the loss is linear in (B, E), and fixing the loss T at the
# target fixes E = T - B * h(target): the best B is a clipped one-variable least-squares solution.
# So the least-squares residual as a function of T, minimised over everything else (the profile),
# is an exhaustive search over a 2-D shape grid refined by a pattern search, with no local optima
# to miss. In (beta, log D_t) the valley of the rectified fit is nearly axis-aligned, which a
# coarse grid resolves; in (beta, log D_l) it is a curved ridge.

_BETA_GRID = np.linspace(0.02, 2.0, 50)
_N_LOGDT = 41
#: Profile stages: a coarse geometric T grid, then two linear grids over the plausible region.
_N_COARSE, _N_FINE = 60, 80
#: The fine grids cover the T where the signed root deviance is at most this (in noise units).
_ZMAX = 5.0
#: Pattern-search rounds refining the best shape per target loss.
_N_SEARCH = 40
#: Floor of the relative noise variance (losses are rarely given to more than 6 digits).
_MIN_VAR = 1e-12


def _h(logd: np.ndarray, beta: np.ndarray, logdt: np.ndarray) -> np.ndarray:
    """h = 1 / (D_t^beta + D^beta) (broadcasts; log D_t = -inf gives the power law, D^-beta).

    No overflow: beta <= 2 and log D_t, log D stay below ~20 on the grids used here."""
    return 1.0 / (np.exp(beta * logdt) + np.exp(beta * logd))


def _rss_grid(
    logd: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    logt: float,
    T: np.ndarray,
    beta: np.ndarray,
    logdt: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted residual sum of squares (K, C) and best B (K, C) at target losses ``T`` (K,) for
    shapes ``beta``, ``logdt`` of shape (C,) (shared) or (K, C) (one set per T), with B >= 0 and
    E = T - B * h(target) >= 0."""
    beta = np.atleast_2d(beta)
    logdt = np.atleast_2d(logdt)
    ht = _h(logt, beta, logdt)  # (K or 1, C)
    g = _h(logd, beta[..., None], logdt[..., None]) - ht[..., None]  # (K or 1, C, n)
    s_gg = (g * g) @ w
    s_gr = g @ (w * y) - T[:, None] * (g @ w)
    r = y[None, :] - T[:, None]
    s_rr = (r * r) @ w
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(s_gg > 0, s_gr / np.where(s_gg > 0, s_gg, 1.0), 0.0)
        b = np.clip(b, 0.0, T[:, None] / ht)
    rss = s_rr[:, None] - 2 * b * s_gr + b * b * s_gg
    return np.maximum(rss, 0.0), b


def _profile(
    logd: np.ndarray, y: np.ndarray, logt: float, T: np.ndarray, power: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Profile residual (K,) at target losses ``T`` and the best (B, D_l, beta, E) per T (K, 4).

    Residuals are relative (weights 1/L^2): the noise on a mean loss scales with the loss."""
    w = 1.0 / y**2
    if power:
        logdt_axis = np.array([-np.inf])
    else:
        # Plateau ends from 100x below the smallest size to 100x above the target.
        logdt_axis = np.linspace(
            logd.min() - np.log(100), max(logt, logd.max()) + np.log(100), _N_LOGDT
        )
    bb, ll = (a.ravel() for a in np.meshgrid(_BETA_GRID, logdt_axis, indexing="ij"))
    rss, _ = _rss_grid(logd, y, w, logt, T, bb, ll)
    k = np.argmin(rss, axis=1)
    best = rss[np.arange(T.size), k]
    cb, cl = bb[k], ll[k]
    # Pattern search from each T's best grid shape: a 5x5 stencil, moved to its best point; the
    # stencil halves where no point improves. (The valley is narrow for precise losses, so a
    # plain zoom would stall on its wall.)
    step_b = np.full(T.size, _BETA_GRID[1] - _BETA_GRID[0])
    step_l = np.zeros(T.size) if power else np.full(T.size, logdt_axis[1] - logdt_axis[0])
    off = np.linspace(-1.0, 1.0, 5)
    ob, ol = (a.ravel() for a in np.meshgrid(off, off, indexing="ij"))
    for _ in range(_N_SEARCH):
        # Rows whose stencil is still coarser than the resolution that matters.
        act = np.flatnonzero((step_b > 1e-4) | (step_l > 1e-3))
        if act.size == 0:
            break
        nb = np.clip(cb[act, None] + step_b[act, None] * ob[None, :], 1e-3, 2.0)
        if power:
            nl = np.broadcast_to(cl[act, None], nb.shape)
        else:
            nl = cl[act, None] + step_l[act, None] * ol[None, :]
        rs, _ = _rss_grid(logd, y, w, logt, T[act], nb, nl)
        kk = np.argmin(rs, axis=1)
        sub = np.arange(act.size)
        new = rs[sub, kk]
        better = new < best[act] * (1 - 1e-12)
        best[act] = np.where(better, new, best[act])
        cb[act] = np.where(better, nb[sub, kk], cb[act])
        cl[act] = np.where(better, nl[sub, kk], cl[act])
        step_b[act] = np.where(better, step_b[act], step_b[act] / 2)
        step_l[act] = np.where(better, step_l[act], step_l[act] / 2)
    # Parameters of the best shape per T (B solved again at the refined shape).
    _, b = _rss_grid(logd, y, w, logt, T, cb[:, None], cl[:, None])
    b = b[:, 0]
    ht = _h(logt, cb, cl)
    with np.errstate(invalid="ignore", over="ignore"):
        d_l = np.where(np.isfinite(cl), np.exp(cb * cl), 0.0)
    params = np.stack([b, d_l, cb, np.maximum(T - b * ht, 0.0)], axis=1)
    return best, params


@dataclass
class TargetProfile:
    """One candidate's least-squares profile of its loss at the target data size.

    ``T`` (K,) target losses (nats/token), ``rss`` (K,) the smallest relative residual sum of
    squares of a curve through (target, T), ``params`` (K, 4) that curve's (B, D_l, beta, E)
    (D_l = 0 and B = A for the power law), ``n`` points fitted, ``n_params`` parameters of the
    law.
    """

    T: np.ndarray
    rss: np.ndarray
    params: np.ndarray
    n: int
    n_params: int

    def merged(self, T: np.ndarray, rss: np.ndarray, params: np.ndarray) -> TargetProfile:
        """This profile with more target losses evaluated."""
        allT = np.concatenate([self.T, T])
        T_u, idx = np.unique(allT, return_index=True)
        rss_all = np.concatenate([self.rss, rss])[idx]
        par_all = np.concatenate([self.params, params])[idx]
        return TargetProfile(T_u, rss_all, par_all, self.n, self.n_params)

    @property
    def rss_min(self) -> float:
        return float(self.rss.min())

    def best_index(self) -> int:
        return int(np.argmin(self.rss))

    def t_hat(self) -> float:
        """Least-squares prediction (nats/token), refined by a parabola through the grid minimum."""
        i = self.best_index()
        if 0 < i < self.T.size - 1:
            t0, t1, t2 = self.T[i - 1 : i + 2]
            r0, r1, r2 = self.rss[i - 1 : i + 2]
            den = (t1 - t0) * (r1 - r2) - (t1 - t2) * (r1 - r0)
            if den != 0:
                num = (t1 - t0) ** 2 * (r1 - r2) - (t1 - t2) ** 2 * (r1 - r0)
                t = t1 - 0.5 * num / den
                if t0 <= t <= t2:
                    return float(t)
        return float(self.T[i])

    def region(self, var: float) -> tuple[float, float]:
        """The T range where the profile is within ``_ZMAX`` noise units of its minimum (plus one
        grid step each side), for relative noise variance ``var``."""
        inside = np.flatnonzero(self.rss - self.rss_min <= _ZMAX**2 * var)
        a, b = max(inside[0] - 1, 0), min(inside[-1] + 1, self.T.size - 1)
        return float(self.T[a]), float(self.T[b])

    def cdf(self, var: float, dof: int) -> np.ndarray:
        """Confidence distribution of the target loss on ``T`` (K,): Student-t of the signed
        root of the profile deviance, made monotone; ``var`` relative noise variance."""
        i = self.best_index()
        z = np.sign(self.T - self.T[i]) * np.sqrt((self.rss - self.rss_min) / var)
        z = np.maximum.accumulate(z)
        return scipy.stats.t.cdf(z, dof)


def target_profile(
    D: np.ndarray,
    L: np.ndarray,
    target: float,
    law: str = "rectified",
    var: float | None = None,
    start: TargetProfile | None = None,
) -> TargetProfile:
    """The profile of the loss at ``target`` examples of a one-factor law fitted to losses ``L``
    (nats/token) at data sizes ``D`` (examples): a coarse geometric grid of target losses, then
    linear grids where the deviance is small for relative noise variance ``var`` (None: this
    curve's own residual variance). ``start`` (a profile of the same data) is refined once more
    instead of starting afresh."""
    if law not in _PROFILE_LAWS:
        raise UserError(f"model selection needs a one-factor law (power, rectified), not {law}")
    D = np.asarray(D, dtype=float)
    y = np.asarray(L, dtype=float)
    logd, logt = np.log(D), float(np.log(target))
    power = law == "power"
    n_params = len(get_law(law).param_names)
    if start is None:
        T = np.geomspace(1e-3 * y.min(), 1.05 * y.max(), _N_COARSE)
        prof = TargetProfile(T, *_profile(logd, y, logt, T, power), int(D.size), n_params)
        rounds = 2
    else:
        prof, rounds = start, 1
    for _ in range(rounds):
        v = var if var is not None else prof.rss_min / max(prof.n - n_params, 1)
        a, b = prof.region(max(v, _MIN_VAR))
        T = np.linspace(a, b, _N_FINE)
        prof = prof.merged(T, *_profile(logd, y, logt, T, power))
    return prof


_PROFILE_LAWS = ("rectified", "power")


def _on_grid(profiles: list[TargetProfile], var: float, dof: int) -> tuple[np.ndarray, np.ndarray]:
    """Every candidate's confidence distribution on one common T grid (M,): (grid, C (k, M))."""
    grid = np.unique(np.concatenate([p.T for p in profiles]))
    cdfs = np.stack([np.interp(grid, p.T, p.cdf(var, dof), left=0.0, right=1.0) for p in profiles])
    return grid, cdfs


def win_probabilities(
    profiles: list[TargetProfile], var: float, dof: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_best (k,), pairwise (k, k))``: the confidence that each candidate has the lowest loss
    at the target, and that candidate a beats candidate b (``pairwise[a, b]``), from independent
    confidence distributions (quadrature on a common grid; mass beyond a profile's grid sits at
    its end)."""
    _, cdf = _on_grid(profiles, var, dof)
    prev = np.concatenate([np.zeros((len(profiles), 1)), cdf[:, :-1]], axis=1)
    mass = cdf - prev  # probability of each grid cell (ending at the grid point)
    surv = 1.0 - 0.5 * (prev + cdf)  # P(T > the cell), midpoint rule
    k = len(profiles)
    pair = np.zeros((k, k))
    p_best = np.zeros(k)
    for a in range(k):
        pair[a] = (mass[a][None, :] * surv).sum(axis=1)
        others = np.prod(np.delete(surv, a, axis=0), axis=0)
        p_best[a] = float((mass[a] * others).sum())
    np.fill_diagonal(pair, 0.0)
    total = p_best.sum()
    return (p_best / total if total > 0 else p_best), pair


def _interval(p: TargetProfile, var: float, dof: int, level: float) -> list[float]:
    c = p.cdf(var, dof)
    q = 0.5 * (1 - level)
    lo = float(p.T[0]) if c[0] >= q else float(np.interp(q, c, p.T))
    hi = float(p.T[-1]) if c[-1] <= 1 - q else float(np.interp(1 - q, c, p.T))
    return [lo, hi]


def select_model(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    budget: float,
    target: float,
    law: str = "rectified",
    *,
    confidence: float = 0.9,
    level: float = 0.95,
) -> dict[str, Any]:
    """Pick the candidate (name -> (data sizes in examples, losses in nats/token)) with the lowest
    loss at ``target`` examples, using only points with data size <= ``budget``.

    The rule starts from the candidate with the lowest loss at the budget and moves to another
    candidate only when the fitted laws are confident of the flip: the confidence that it ends
    lower at the target than the budget-best is at least ``confidence``. Each candidate's
    confidence distribution of its target loss comes from the profile of a least-squares fit of
    ``law`` (relative residuals) with the noise estimated from the residuals of all candidates
    together. Applying the rule again to the candidates left gives the full ranking.

    Returns ``{"predictions": [{"model", "predicted_loss" (nats/token), "predicted_loss_ci"
    [lo, hi] (``level`` interval), "p_best", "n_points", "converged"}] (the rule's order, best
    first), "best", "p_best", "budget_best", "flipped", "p_beats_budget_best" (None unless
    flipped), "noise" (relative), "noise_dof", "confidence", "level"}``.
    """
    if not curves:
        raise UserError("no candidate models to select from")
    if not (target > 0 and budget > 0):
        raise UserError("the budget and target data sizes must be positive")
    if law not in _PROFILE_LAWS:
        raise UserError(f"model selection needs a one-factor law (power, rectified), not {law}")
    if not 0.5 <= confidence < 1:
        raise UserError(f"confidence must be in [0.5, 1), got {confidence}")
    if not 0 < level < 1:
        raise UserError(f"level must be in (0, 1), got {level}")
    n_params = len(get_law(law).param_names)
    names, data = [], []
    for name, (D, L) in curves.items():
        D = np.asarray(D, dtype=float)
        L = np.asarray(L, dtype=float)
        if D.shape != L.shape or np.any(~(D > 0)) or np.any(~np.isfinite(D)):
            raise UserError(f"model {name!r}: data sizes must be positive, one per loss")
        if np.any(~np.isfinite(L)) or np.any(L <= 0):
            raise UserError(f"model {name!r}: losses must be positive and finite")
        keep = budget >= D
        if keep.sum() < n_params:
            raise UserError(
                f"model {name!r}: {int(keep.sum())} data sizes <= budget {budget:g}, the {law} "
                f"law needs at least {n_params}"
            )
        order = np.argsort(D[keep])
        names.append(str(name))
        data.append((D[keep][order], L[keep][order]))
    dof = sum(D.size - n_params for D, _ in data)
    if dof < 1:
        raise UserError(
            f"every model has exactly {n_params} data sizes <= budget {budget:g}: one more for "
            "some model is needed to estimate the noise"
        )
    # Noise: pooled over candidates (same runs, same seeds); first from each one's own profile,
    # then the profiles are refined where that pooled noise makes them matter.
    profiles = [target_profile(D, L, target, law) for D, L in data]
    var = max(sum(p.rss_min for p in profiles) / dof, _MIN_VAR)
    profiles = [
        target_profile(D, L, target, law, var, start=p)
        for p, (D, L) in zip(profiles, data, strict=True)
    ]
    var = max(sum(p.rss_min for p in profiles) / dof, _MIN_VAR)
    p_best, pair = win_probabilities(profiles, var, dof)
    # The budget-best: the lowest loss at the budget, observed where every candidate was run at
    # the same largest size, else as fitted there.
    last = {float(D[-1]) for D, _ in data}
    if len(last) == 1:
        at_budget = np.array([L[-1] for _, L in data])
    else:
        at_budget = np.array([_value_at(p, budget) for p in profiles])
    order = _rule_order(at_budget, pair, confidence)
    preds = []
    for k in order:
        p = profiles[k]
        i = p.best_index()
        preds.append(
            {
                "model": names[k],
                "predicted_loss": p.t_hat(),
                "predicted_loss_ci": _interval(p, var, dof, level),
                "p_best": float(p_best[k]),
                "n_points": p.n,
                "converged": bool(0 < i < p.T.size - 1),
            }
        )
    budget_best = int(np.argmin(at_budget))
    return {
        "predictions": preds,
        "best": names[order[0]],
        "p_best": float(p_best[order[0]]),
        "budget_best": names[budget_best],
        "flipped": bool(order[0] != budget_best),
        "p_beats_budget_best": None
        if order[0] == budget_best
        else float(pair[order[0], budget_best]),
        "noise": float(np.sqrt(var)),
        "noise_dof": int(dof),
        "confidence": confidence,
        "level": level,
    }


def _value_at(p: TargetProfile, size: float) -> float:
    """The least-squares curve's loss (nats/token) at ``size`` examples."""
    B, d_l, beta, E = p.params[p.best_index()]
    return float(B / (d_l + size**beta) + E)


def _rule_order(at_budget: np.ndarray, pair: np.ndarray, confidence: float) -> list[int]:
    """The rule's ranking: from the remaining candidates, take the budget-best unless another
    beats it with confidence >= ``confidence`` (then the most confident such one)."""
    left = list(range(at_budget.size))
    out = []
    while left:
        i = min(left, key=lambda k: at_budget[k])
        challengers = [k for k in left if k != i]
        if challengers:
            j = max(challengers, key=lambda k: pair[k, i])
            if pair[j, i] >= confidence:
                i = j
        out.append(i)
        left.remove(i)
    return out
