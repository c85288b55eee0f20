"""Joint form of Lin et al.'s rectified law: L(X, D) = A * X^-alpha / (D_l + D^beta) + E.

Lin et al. (2024, "Selecting LLM to fine-tune via rectified scaling law") add the pre-learned
data size D_l to D^beta, after the exponent: D_l is in units of D^beta and carries no exponent of
its own, unlike ``multiplicative_rectified``'s (D + D_l)^-beta, where beta bends D_l with D. The
two forms agree far from the knee (the power law A X^-alpha D^-beta + E once D^beta >> D_l, a
plateau while D^beta << D_l) and differ in how sharp the knee is. D = 0 is a valid point (the
zero-shot loss: A X^-alpha / D_l + E).
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


class LinRectifiedLaw(ScalingLaw):
    """L = A * X^-alpha / (D_l + D^beta) + E; X a scaling factor, D the finetuning data size
    (examples, 0 allowed), D_l the pre-learned data size (in units of D^beta), L in
    nats/token."""

    name = "lin_rectified"
    short = "lin-rect"
    formula = "L = A * X^-alpha / (D_l + D^beta) + E"
    param_names = ("A", "alpha", "beta", "D_l", "E")
    n_factors = 2
    accepts_zero_data = True
    # Not in "auto": a fifth five-parameter law to cross-validate costs a third more fitting
    # time, and on the demo it extrapolates no better than multiplicative_rectified (docs/laws.md).
    in_auto = False
    # 4 * 4 * 4 * 4 * 3 = 768 starts, as multiplicative_rectified's.
    default_grid = {
        "A": (0.0, 5.0, 10.0, 20.0),
        "alpha": (0.0, 0.25, 0.5, 1.0),
        "beta": (0.1, 0.3, 0.6, 1.0),
        "D_l": (-3.0, 1.0, 3.0, 6.0),
        "E": (-1.0, -0.3, 0.3),
    }
    bounds = {"beta": (0.0, 3.0), "D_l": (-10.0, 16.0)}

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, beta, log_dl, e = (theta[:, k, None] for k in range(5))
        zero = ~np.isfinite(d)  # D = 0: D^beta = 0 whatever beta
        dd = np.where(zero, 0.0, d)
        v = np.logaddexp(log_dl, np.where(zero, -np.inf, beta * dd))  # log(D_l + D^beta)
        s = np.exp(log_dl - v)  # D_l / (D_l + D^beta)
        u = a - alpha * x - v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)  # share of the power term in L_hat
        g = np.stack([w, -x * w, -dd * (1.0 - s) * w, -s * w, 1.0 - w], axis=-1)
        return lp, g
