"""Rectified law with a free exponent on the pre-learned term: L(D) = B / (D_l + D^beta)^gamma
+ E.

Lin et al.'s rectified law (``rectified``) is gamma = 1: its plateau (D^beta << D_l) and its
power phase (L - E ~ B D^-beta) share one exponent, so the knee's sharpness and the
post-power slope are tied. With gamma free the power phase falls as D^-(beta * gamma) while
beta alone sets how fast the curve leaves the plateau; a zero-shot loss (D = 0: B / D_l^gamma
+ E) that sits above a steep first drop then bends the knee instead of the slope beyond it.
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw
from ftscale.laws.rectified import pre_learned_term


class RectifiedPowerLaw(ScalingLaw):
    """L = B / (D_l + D^beta)^gamma + E; D the finetuning data size (examples, 0 allowed), D_l
    the pre-learned data size (in units of D^beta), L in nats/token."""

    name = "rectified_power"
    short = "rect-pow"
    formula = "L = B / (D_l + D^beta)^gamma + E"
    param_names = ("B", "D_l", "beta", "gamma", "E")
    n_factors = 1
    default_grid = {
        "B": (0.0, 3.0, 8.0),
        "D_l": (-2.0, 2.0, 6.0, 10.0),
        "beta": (0.3, 1.0, 2.0),
        "gamma": (0.3, 1.0),
        "E": (-1.5, -0.5, 0.3),
    }
    bounds = {"beta": (0.0, 4.0), "gamma": (0.02, 4.0), "D_l": (-30.0, 30.0)}
    accepts_zero_data = True
    in_auto = False

    @staticmethod
    def log_pred(theta, x, d):
        b, log_dl, beta, gamma, e = (theta[:, k, None] for k in range(5))
        dd, v, s = pre_learned_term(log_dl, beta, d)
        u = b - gamma * v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)
        g = np.stack([w, -gamma * s * w, -gamma * dd * (1.0 - s) * w, -v * w, 1.0 - w], axis=-1)
        return lp, g
