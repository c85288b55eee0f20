"""Additive joint law (the paper's appendix, Chinchilla's form): L = A * X^-alpha + B * D^-beta + E."""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


class AdditiveLaw(ScalingLaw):
    """L = A * X^-alpha + B * D^-beta + E; X a scaling factor, D the finetuning data size
    (examples), L in nats/token."""

    name = "additive"
    short = "add"
    formula = "L = A * X^-alpha + B * D^-beta + E"
    param_names = ("A", "alpha", "B", "beta", "E")
    n_factors = 2
    # Chinchilla's grid (Hoffmann et al. 2022, and its replications): 6 * 5 * 6 * 5 * 5 = 4,500.
    default_grid = {
        "A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
        "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
        "B": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
        "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
        "E": (-1.0, -0.5, 0.0, 0.5, 1.0),
    }

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, b, beta, e = (theta[:, k, None] for k in range(5))
        u1 = a - alpha * x
        u2 = b - beta * d
        m = np.maximum(np.maximum(u1, u2), e)
        e1, e2, e3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(e - m)
        tot = e1 + e2 + e3
        lp = m + np.log(tot)
        w1, w2, w3 = e1 / tot, e2 / tot, e3 / tot
        g = np.stack([w1, -x * w1, w2, -d * w2, w3], axis=-1)
        return lp, g
