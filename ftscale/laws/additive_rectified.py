"""Additive-rectified joint law: L(X, D) = A * X^-alpha + B * (D + D_l)^-beta + E.

The additive (Chinchilla-form) law with Lin et al.'s pre-learned data size D_l (2024,
"Selecting LLM to fine-tune via rectified scaling law") added to D: flat while D << D_l, the
power law B * D^-beta once D >> D_l; the factor's term does not depend on D. D = 0 is a valid
point (the zero-shot loss).
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.additive import log_sum3
from ftscale.laws.base import ScalingLaw


class AdditiveRectifiedLaw(ScalingLaw):
    """L = A * X^-alpha + B * (D + D_l)^-beta + E; X a scaling factor, D the finetuning data size
    (examples, 0 allowed), D_l the pre-learned data size (examples), L in nats/token."""

    name = "additive_rectified"
    short = "add-rect"
    formula = "L = A * X^-alpha + B * (D + D_l)^-beta + E"
    param_names = ("A", "alpha", "B", "beta", "D_l", "E")
    n_factors = 2
    accepts_zero_data = True
    # Not in "auto": with 6 parameters it needs more points than a study's cross-validation
    # folds leave (on the demo, 9 fitted points per method: no fold kept 7), so it could never
    # be chosen there, and its 972-start grid was a third of auto's fitting time.
    in_auto = False
    # 4 * 3 * 3 * 3 * 3 * 3 = 972 starts.
    default_grid = {
        "A": (0.0, 5.0, 10.0, 20.0),
        "alpha": (0.0, 0.5, 1.0),
        "B": (0.0, 5.0, 10.0),
        "beta": (0.2, 0.5, 1.0),
        "D_l": (-3.0, 3.0, 7.0),
        "E": (-1.0, 0.0, 0.5),
    }
    bounds = {"beta": (0.0, 3.0), "D_l": (-10.0, 16.0)}

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, b, beta, log_dl, e = (theta[:, k, None] for k in range(6))
        v = np.logaddexp(d, log_dl)  # log(D + D_l)
        s = np.exp(log_dl - v)  # D_l / (D + D_l)
        lp, (w1, w2, w3) = log_sum3(a - alpha * x, b - beta * v, e)
        g = np.stack([w1, -x * w1, w2, -v * w2, -beta * s * w2, w3], axis=-1)
        return lp, g
