"""Multiplicative-rectified joint law: L(X, D) = A * X^-alpha * (D + D_l)^-beta + E.

The paper's multiplicative law (Zhang et al., ICLR 2024, Eq. 1) with Lin et al.'s pre-learned
data size (2024, "Selecting LLM to fine-tune via rectified scaling law") added to D: a model
that has already learned D_l examples' worth of the task sits on a flat "pre-power" phase while
D << D_l and on the power law A * X^-alpha * D^-beta + E once D >> D_l. A curve that accelerates
in log D over the measured sizes (the small sizes on the plateau) is this shape; the plain
multiplicative law fitted to it extrapolates too high. D = 0 is a valid point (the zero-shot
loss: A * X^-alpha * D_l^-beta + E).
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


class MultiplicativeRectifiedLaw(ScalingLaw):
    """L = A * X^-alpha * (D + D_l)^-beta + E; X a scaling factor (parameters, tokens, PET size),
    D the finetuning data size (examples, 0 allowed), D_l the pre-learned data size (examples),
    L in nats/token."""

    name = "multiplicative_rectified"
    short = "mult-rect"
    formula = "L = A * X^-alpha * (D + D_l)^-beta + E"
    param_names = ("A", "alpha", "beta", "D_l", "E")
    n_factors = 2
    accepts_zero_data = True
    # 4 * 4 * 4 * 4 * 3 = 768 starts, as many as the multiplicative law's 750.
    default_grid = {
        "A": (0.0, 5.0, 10.0, 20.0),
        "alpha": (0.0, 0.25, 0.5, 1.0),
        "beta": (0.1, 0.3, 0.6, 1.0),
        "D_l": (-3.0, 2.0, 5.0, 8.0),
        "E": (-1.0, -0.3, 0.3),
    }
    # D_l from ~0 (the multiplicative law) to ~9e6 examples; beta past 3 with a large D_l is a
    # step, not a learning curve.
    bounds = {"beta": (0.0, 3.0), "D_l": (-10.0, 16.0)}

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, beta, log_dl, e = (theta[:, k, None] for k in range(5))
        v = np.logaddexp(d, log_dl)  # log(D + D_l); D = 0 (d = -inf) gives log D_l
        s = np.exp(log_dl - v)  # D_l / (D + D_l)
        u = a - alpha * x - beta * v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)  # share of the power term in L_hat
        g = np.stack([w, -x * w, -v * w, -beta * s * w, 1.0 - w], axis=-1)
        return lp, g
