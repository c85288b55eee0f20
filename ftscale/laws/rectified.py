"""Rectified one-factor law (Lin et al. 2024, "Selecting LLM to fine-tune via rectified scaling
law"): L(D) = B / (D_l + D^beta) + E.

D_l, the "pre-learned data size", is what the pretrained model already knows of the task, in
units of D^beta. While D^beta << D_l the curve is flat (the "pre-power" phase); once D^beta >> D_l
it becomes the power law B * D^-beta + E. Cheap small-data runs often sit in the flat phase, where
a plain power law fitted to them extrapolates badly.
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.base import ScalingLaw


def pre_learned_term(
    log_dl: np.ndarray, beta: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pre-learned term D_l + D^beta of the laws that add D_l after the exponent
    (``rectified``, ``rectified_power``, ``lin_rectified``), from log D_l, beta and log data
    sizes ``d`` (D = 0 is d = -inf, where D^beta = 0 whatever beta): ``(dd, v, s)`` with ``dd``
    the log data sizes with 0 for D = 0 (the gradient's factor for beta), ``v`` = log(D_l +
    D^beta) and ``s`` = D_l / (D_l + D^beta)."""
    zero = ~np.isfinite(d)
    dd = np.where(zero, 0.0, d)
    v = np.logaddexp(log_dl, np.where(zero, -np.inf, beta * dd))
    s = np.exp(log_dl - v)
    return dd, v, s


class RectifiedLaw(ScalingLaw):
    """L = B / (D_l + D^beta) + E; D the finetuning data size (examples), L in nats/token."""

    name = "rectified"
    formula = "L = B / (D_l + D^beta) + E"
    param_names = ("B", "D_l", "beta", "E")
    n_factors = 1
    default_grid = {
        "B": (0.0, 3.0, 8.0),
        "D_l": (-2.0, 2.0, 6.0, 10.0),
        "beta": (0.2, 0.5, 1.0),
        "E": (-1.5, -0.5, 0.3),
    }
    # beta beyond 2 with a huge D_l is a step function, not a learning curve.
    bounds = {"beta": (0.0, 2.0), "D_l": (-30.0, 30.0)}
    # D = 0 (the zero-shot loss) is the plateau's start: B / D_l + E.
    accepts_zero_data = True

    @staticmethod
    def log_pred(theta, x, d):
        b, log_dl, beta, e = (theta[:, k, None] for k in range(4))
        dd, v, s = pre_learned_term(log_dl, beta, d)
        u = b - v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)
        g = np.stack([w, -s * w, -dd * (1.0 - s) * w, 1.0 - w], axis=-1)
        return lp, g
