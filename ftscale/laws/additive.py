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
        lp, (w1, w2, w3) = log_sum3(a - alpha * x, b - beta * d, e)
        g = np.stack([w1, -x * w1, w2, -d * w2, w3], axis=-1)
        return lp, g


def log_sum3(
    u1: np.ndarray, u2: np.ndarray, u3: np.ndarray
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """log(e^u1 + e^u2 + e^u3) without overflow, and each term's share of the sum (the
    gradient of the log-sum in u1, u2, u3): the additive forms' three terms."""
    m = np.maximum(np.maximum(u1, u2), u3)
    e1, e2, e3 = np.exp(u1 - m), np.exp(u2 - m), np.exp(u3 - m)
    tot = e1 + e2 + e3
    return m + np.log(tot), (e1 / tot, e2 / tot, e3 / tot)
