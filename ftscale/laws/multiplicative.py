"""Multiplicative joint law (the paper's Eq. 1): L(X, D) = A * X^-alpha * D^-beta + E."""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


class MultiplicativeLaw(ScalingLaw):
    """L = A * X^-alpha * D^-beta + E; X a scaling factor (parameters, tokens, PET size), D the
    finetuning data size (examples), L in nats/token."""

    name = "multiplicative"
    short = "mult"
    formula = "L = A * X^-alpha * D^-beta + E"
    param_names = ("A", "alpha", "beta", "E")
    n_factors = 2
    closed_form_crossing = True
    default_grid = {
        "A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
        "alpha": (0.0, 0.25, 0.5, 1.0, 1.5),
        "beta": (0.0, 0.1, 0.3, 0.6, 1.0),
        "E": (-2.0, -1.0, -0.5, 0.0, 0.5),
    }

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, beta, e = (theta[:, k, None] for k in range(4))
        u = a - alpha * x - beta * d
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)  # share of the power term in L_hat
        g = np.stack([w, -x * w, -d * w, 1.0 - w], axis=-1)
        return lp, g
