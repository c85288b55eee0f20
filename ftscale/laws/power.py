"""One-factor power law (per model): L(D) = A * D^-beta + E."""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


class PowerLaw(ScalingLaw):
    """L = A * D^-beta + E; D the finetuning data size (examples), L in nats/token."""

    name = "power"
    formula = "L = A * D^-beta + E"
    param_names = ("A", "beta", "E")
    n_factors = 1
    default_grid = {
        "A": (-2.0, 1.0, 4.0, 8.0, 12.0),
        "beta": (0.05, 0.2, 0.5, 1.0),
        "E": (-1.5, -0.5, 0.3),
    }

    @staticmethod
    def log_pred(theta, x, d):
        a, beta, e = (theta[:, k, None] for k in range(3))
        u = a - beta * d
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)
        g = np.stack([w, -d * w, 1.0 - w], axis=-1)
        return lp, g
