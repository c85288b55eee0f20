"""Critical finetuning data size: where two methods' predicted losses meet.

For a factor value X, the critical data size between methods 1 and 2 is a data size D where
L1(X, D) = L2(X, D). The difference of two laws with different E can change sign twice, so all
crossings in the range are found (a dense log grid brackets every sign change, Brent's method
refines each). When E1 = E2 and both laws are multiplicative there is one crossing in closed form:
D_c = H * X^gamma with H = (A1/A2)^(1/(beta1-beta2)) and gamma = (alpha2-alpha1)/(beta1-beta2).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw

DEFAULT_RANGE = (1e2, 1e12)


def crossings(
    law1: ScalingLaw,
    law2: ScalingLaw,
    x: float | None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
    n_grid: int = 2001,
) -> list[float]:
    """All data sizes (examples) in [lo, hi] where the two fitted laws predict equal loss at
    factor value ``x`` (None for one-factor laws), in increasing order."""
    if not (0 < lo < hi) or not np.isfinite(hi):
        raise UserError(f"data-size range must satisfy 0 < LO < HI, got [{lo}, {hi}]")
    grid = np.geomspace(lo, hi, n_grid)

    def diff(dd):
        return law1.predict(x, dd) - law2.predict(x, dd)

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


def closed_form(params1: dict[str, float], params2: dict[str, float]) -> dict[str, float] | None:
    """H and gamma of D_c = H * X^gamma for two multiplicative laws (exact when E1 = E2).

    Returns None when the laws are not multiplicative or beta1 = beta2 (no crossing in D).
    """
    need = {"A", "alpha", "beta", "E"}
    if not (need <= set(params1) and need <= set(params2)) or "B" in params1 or "B" in params2:
        return None
    db = params1["beta"] - params2["beta"]
    if db == 0:
        return None
    H = (params1["A"] / params2["A"]) ** (1.0 / db)
    gamma = (params2["alpha"] - params1["alpha"]) / db
    return {"H": float(H), "gamma": float(gamma)}


def critical_data_size(
    law1: ScalingLaw,
    law2: ScalingLaw,
    x: float | None,
    lo: float = DEFAULT_RANGE[0],
    hi: float = DEFAULT_RANGE[1],
) -> dict:
    """``{"x", "critical_data_size" (first crossing or None), "crossings", "note"}``."""
    cs = crossings(law1, law2, x, lo, hi)
    return {
        "x": x,
        "critical_data_size": cs[0] if cs else None,
        "crossings": cs,
        "note": None if cs else f"no crossing in [{lo:g}, {hi:g}]",
    }
