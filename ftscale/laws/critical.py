"""Critical finetuning data size: where two methods' predicted losses meet.

For a factor value X, the critical data size between methods 1 and 2 is a data size D where
L1(X, D) = L2(X, D). The difference of two laws with different E can change sign twice, so all
crossings in the range are found (a dense log grid brackets every sign change, Brent's method
refines each). When E1 = E2 and both laws are multiplicative there is one crossing in closed form:
D_c = H * X^gamma with H = (A1/A2)^(1/(beta1-beta2)) and gamma = (alpha2-alpha1)/(beta1-beta2).

Uncertainty: when both fits carry bootstrap parameter draws (``ftscale fit --bootstrap N --out``
stores them), draw k of method 1 is paired with draw k of method 2 and the first crossing of each
pair is found the same way; the percentile interval of those crossings and the share of pairs
that cross in the range are reported with the point estimate.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw

#: Data sizes (examples) searched for crossings: from one example (a crossing below that means
#: nothing) to 1e12. Crossings far outside a study's own data sizes are extrapolations.
DEFAULT_RANGE = (1.0, 1e12)
#: Level of the bootstrap interval of the critical data size.
DEFAULT_LEVEL = 0.95


def crossings(
    law1: ScalingLaw,
    law2: ScalingLaw,
    x: float | None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = 2001,
    maps: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> list[float]:
    """All data sizes (examples) in [lo, hi] where the two fitted laws predict equal loss at
    factor value ``x`` (None for one-factor laws), in increasing order.

    With ``maps`` ((a1, b1), (a2, b2)) the axis is a budget F instead (FLOPs, seconds): law k
    is evaluated at log D_k = a_k + b_k log F (:func:`ftscale.laws.cost.log_data_map`), and
    the budgets in [lo, hi] where the two compute-matched losses meet are returned."""
    if not (0 < lo < hi) or not np.isfinite(hi):
        what = "data-size" if maps is None else "budget"
        raise UserError(f"{what} range must satisfy 0 < LO < HI, got [{lo}, {hi}]")
    grid = np.geomspace(lo, hi, n_grid)
    (a1, b1), (a2, b2) = maps or ((0.0, 1.0), (0.0, 1.0))

    def diff(dd):
        with np.errstate(over="ignore"):
            d1 = np.exp(a1 + b1 * np.log(dd))
            d2 = np.exp(a2 + b2 * np.log(dd))
        return law1.predict(x, d1) - law2.predict(x, d2)

    v = diff(grid)
    out: list[float] = []
    for i in range(n_grid - 1):
        a, b = v[i], v[i + 1]
        if a == 0:
            out.append(float(grid[i]))
        elif a * b < 0:
            root = scipy.optimize.brentq(
                lambda logd: float(diff(np.exp(logd))),
                np.log(grid[i]),
                np.log(grid[i + 1]),
                xtol=1e-12,
            )
            out.append(float(np.exp(root)))
    if v[-1] == 0:
        out.append(float(grid[-1]))
    return out


def betas_separate(ci1: dict | None, ci2: dict | None) -> bool | None:
    """Whether two fits' beta intervals (``ci`` of a fit record: name -> [lo, hi], 95%
    bootstrap percentiles) do not overlap; None when either fit has no beta interval."""
    b1 = (ci1 or {}).get("beta")
    b2 = (ci2 or {}).get("beta")
    if not b1 or not b2 or None in (*b1, *b2):
        return None
    return bool(b1[1] < b2[0] or b2[1] < b1[0])


def closed_form(
    params1: dict[str, float],
    params2: dict[str, float],
    ci1: dict | None = None,
    ci2: dict | None = None,
) -> dict[str, float | bool | str | None] | None:
    """H and gamma of D_c = H * X^gamma for two multiplicative laws (exact when E1 = E2), and
    ``log10_H``, ``defined`` and ``why``.

    H is computed in log space: with nearly equal betas (1 / (beta1 - beta2) in the hundreds)
    it over- or underflows a float, and is then None while ``log10_H`` still says how far out
    it lies. With the fits' parameter intervals ``ci1`` / ``ci2`` (name -> [lo, hi]) whose beta
    intervals overlap, the betas are equal within them: 1 / (beta1 - beta2) is then anything
    from -inf to inf, so H, ``log10_H`` and gamma are None, ``defined`` is False and ``why``
    says so; the same when beta1 = beta2 exactly. Without intervals the closed form is
    computed (``defined`` True), untested. Returns None when the laws are not multiplicative.
    """
    need = {"A", "alpha", "beta", "E"}
    if not (need <= set(params1) and need <= set(params2)) or "B" in params1 or "B" in params2:
        return None
    undefined = {"H": None, "log10_H": None, "gamma": None, "defined": False}
    db = params1["beta"] - params2["beta"]
    if db == 0:
        return {**undefined, "why": "equal betas: the laws do not cross at one data size"}
    if betas_separate(ci1, ci2) is False:
        b1, b2 = ci1["beta"], ci2["beta"]
        return {
            **undefined,
            "why": f"betas equal within their 95% intervals ([{b1[0]:.3g}, {b1[1]:.3g}] and "
            f"[{b2[0]:.3g}, {b2[1]:.3g}])",
        }
    if not (params1["A"] > 0 and params2["A"] > 0):
        return {**undefined, "why": "a non-positive A"}
    log_h = (np.log(params1["A"]) - np.log(params2["A"])) / db
    gamma = (params2["alpha"] - params1["alpha"]) / db
    h = float(np.exp(log_h)) if abs(log_h) < 700 else None  # exp(709) is the float limit
    return {
        "H": h,
        "log10_H": float(log_h / np.log(10)),
        "gamma": float(gamma),
        "defined": True,
        "why": None,
    }


def format_h(cf: dict | None) -> str:
    """H of a :func:`closed_form` result as text: "undefined" where the betas are equal
    (within their intervals), "10^k" where H is beyond a float, "-" where there is none."""
    cf = cf or {}
    if cf.get("defined") is False:
        return "undefined"
    if cf.get("H") is None and cf.get("log10_H") is not None:
        return f"10^{cf['log10_H']:.0f}"
    return "-" if cf.get("H") is None else f"{cf['H']:.4g}"


def _free_draws(law: ScalingLaw, draws: np.ndarray) -> np.ndarray:
    """Bootstrap draws (R, P) of public parameters -> free parameter vectors (R, P)."""
    return np.stack([law.to_free(dict(zip(law.param_names, row, strict=True))) for row in draws])


def _draw_preds(
    law: ScalingLaw, theta: np.ndarray, x: float | None, logd: np.ndarray
) -> np.ndarray:
    """Predicted losses (R, G) of free parameter rows ``theta`` (R, P) at log data sizes ``logd``
    (G,) and factor value ``x`` (None for one-factor laws)."""
    xx = None if law.n_factors == 1 else law.map_log_x(np.full(logd.shape, np.log(x)))
    with np.errstate(all="ignore"):
        lp, _ = law.log_pred(theta, xx, logd)
    return np.exp(lp)


def bootstrap_crossings(
    pair: tuple[ScalingLaw, ScalingLaw],
    x: float | None,
    span: tuple[float, float] = DEFAULT_RANGE,
    *,
    maps: tuple[tuple[float, float], tuple[float, float]] | None = None,
    n_grid: int = 2001,
) -> np.ndarray | None:
    """First crossing (examples) in ``span`` = [lo, hi] of each pair of bootstrap draws of the
    two laws of ``pair`` (draw k of law 1 with draw k of law 2), NaN where a pair does not
    cross; None when a law has no draws.

    The same dense log grid as :func:`crossings` brackets each pair's first sign change; all
    brackets are then refined together by bisection to ~1e-12 in log D. ``maps``: a budget
    axis, as in :func:`crossings` (the crossings are then budgets)."""
    law1, law2 = pair
    lo, hi = span
    (a1, b1), (a2, b2) = maps or ((0.0, 1.0), (0.0, 1.0))
    d1, d2 = law1.bootstrap_params_, law2.bootstrap_params_
    if d1 is None or d2 is None or len(d1) == 0 or len(d2) == 0:
        return None
    r = min(len(d1), len(d2))
    th1 = _free_draws(law1, np.asarray(d1[:r], dtype=float))
    th2 = _free_draws(law2, np.asarray(d2[:r], dtype=float))
    logd = np.linspace(np.log(lo), np.log(hi), n_grid)
    v = _draw_preds(law1, th1, x, a1 + b1 * logd) - _draw_preds(law2, th2, x, a2 + b2 * logd)
    ok = np.isfinite(v).all(axis=1)
    # First grid index that is an exact zero or starts a sign change (n_grid - 1: none).
    hit = (v[:, :-1] == 0) | (v[:, :-1] * v[:, 1:] < 0)
    hit = np.concatenate([hit, (v[:, -1:] == 0)], axis=1) & ok[:, None]
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    out = np.full(r, np.nan)
    exact = first >= 0
    exact[exact] = v[exact, first[exact]] == 0
    out[exact] = np.exp(logd[first[exact]])
    rows = np.flatnonzero((first >= 0) & ~exact)
    if rows.size:
        a, b = logd[first[rows]], logd[first[rows] + 1]
        fa = v[rows, first[rows]]

        def diff(t: np.ndarray) -> np.ndarray:
            # One data size per row: the diagonal of the (rows, rows) prediction matrix.
            p1 = np.diagonal(_draw_preds(law1, th1[rows], x, a1 + b1 * t))
            p2 = np.diagonal(_draw_preds(law2, th2[rows], x, a2 + b2 * t))
            return p1 - p2

        for _ in range(40):
            m = 0.5 * (a + b)
            fm = diff(m)
            left = np.sign(fm) == np.sign(fa)
            a = np.where(left, m, a)
            fa = np.where(left, fm, fa)
            b = np.where(left, b, m)
        out[rows] = np.exp(0.5 * (a + b))
    return out


def _boot_summary(boot: np.ndarray, level: float) -> tuple[int, float, list[float] | None]:
    """(draws, share of them that cross, ``level`` percentile interval of their crossings or
    None) of :func:`bootstrap_crossings`' first crossings (NaN: no crossing)."""
    hit = boot[np.isfinite(boot)]
    if not hit.size:
        return int(boot.size), 0.0, None
    q = 50 * (1 - level)
    a, b = np.percentile(hit, [q, 100 - q])
    return int(boot.size), float(hit.size / boot.size), [float(a), float(b)]


def _interval_all(boot: np.ndarray, level: float) -> list[float | None] | None:
    """The ``level`` percentile interval of the first crossing over ALL pairs of draws, a pair
    that does not cross in the range counting as a crossing beyond its end: ``[lo, hi]``
    (examples), ``hi`` None when the interval reaches past the range (the methods may not
    cross in it), ``[None, None]`` when fewer than (1 - level) / 2 of the pairs cross; None
    without draws. Unlike the interval over the crossing pairs only, it does not lose the
    pairs that put the crossing beyond the range."""
    if boot.size == 0:
        return None
    v = np.where(np.isfinite(boot), boot, np.inf)
    q = 50 * (1 - level)
    a = float(np.percentile(v, q, method="lower"))
    b = float(np.percentile(v, 100 - q, method="higher"))
    return [a if np.isfinite(a) else None, b if np.isfinite(b) else None]


def critical_data_size(
    law1: ScalingLaw,
    law2: ScalingLaw,
    x: float | None = None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    level: float = DEFAULT_LEVEL,
) -> dict:
    """``{"x", "critical_data_size" (first crossing or None), "crossings", "note",
    "critical_data_size_ci", "p_crossing", "n_draws"}`` at factor value ``x`` (None, the
    default, for one-factor laws), searched in [lo, hi] (examples).

    With bootstrap draws on both laws: ``critical_data_size_ci`` is the ``level`` percentile
    interval [lo, hi] (examples) of the first crossing over the pairs of draws that cross in
    [lo, hi] (None if none does), ``p_crossing`` the share of pairs that cross there, and
    ``critical_data_size_interval`` the interval over all pairs (:func:`_interval_all`: a pair
    without a crossing counts as one beyond the range). Without draws all are None.
    """
    cs = crossings(law1, law2, x, lo, hi)
    out = {
        "x": x,
        "critical_data_size": cs[0] if cs else None,
        "crossings": cs,
        "note": None if cs else f"no crossing in [{lo:g}, {hi:g}]",
        "critical_data_size_ci": None,
        "critical_data_size_interval": None,
        "p_crossing": None,
        "n_draws": None,
    }
    boot = bootstrap_crossings((law1, law2), x, (lo, hi))
    if boot is not None:
        out["n_draws"], out["p_crossing"], out["critical_data_size_ci"] = _boot_summary(boot, level)
        out["critical_data_size_interval"] = _interval_all(boot, level)
    return out


def critical_budget(
    law1: ScalingLaw,
    law2: ScalingLaw,
    cost1: dict,
    cost2: dict,
    x: float | None,
    lo: float,
    hi: float,
    level: float = DEFAULT_LEVEL,
) -> dict:
    """The critical budget (FLOPs, seconds: the unit of the cost models' column) between two
    methods at factor value ``x``: a budget F where their compute-matched losses meet, each
    method trained on the data size its cost model ``cost1`` / ``cost2`` affords at F
    (:func:`ftscale.laws.cost.data_size_at_cost`). Searched over log F in [lo, hi] as
    :func:`crossings` searches log D.

    ``{"x", "critical_budget" (first crossing or None), "crossings", "data_sizes" ([D1, D2] at
    the first crossing, examples), "note", "critical_budget_ci", "p_crossing", "n_draws"}``;
    the interval and ``p_crossing`` as in :func:`critical_data_size` (pairs of bootstrap
    draws; the cost models are taken as they are).
    """
    from ftscale.laws.cost import log_data_map

    m1, m2 = log_data_map(cost1, x), log_data_map(cost2, x)
    if m1 is None or m2 is None:
        raise UserError("a cost model does not grow with data size: no budget picks a data size")
    maps = (m1, m2)
    cs = crossings(law1, law2, x, lo, hi, maps=maps)
    first = cs[0] if cs else None
    out: dict = {
        "x": x,
        "critical_budget": first,
        "crossings": cs,
        "data_sizes": None
        if first is None
        else [float(np.exp(a + b * np.log(first))) for a, b in maps],
        "note": None if cs else f"no crossing in [{lo:g}, {hi:g}]",
        "critical_budget_ci": None,
        "p_crossing": None,
        "n_draws": None,
    }
    boot = bootstrap_crossings((law1, law2), x, (lo, hi), maps=maps)
    if boot is not None:
        out["n_draws"], out["p_crossing"], out["critical_budget_ci"] = _boot_summary(boot, level)
    return out
