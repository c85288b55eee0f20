"""Zero-shot-rectified joint law: L(Z, D) = A * (Z - E)^alpha * (D + D_l)^-beta + E.

The multiplicative-rectified law (:mod:`ftscale.laws.multiplicative_rectified`) with the model
entering through its zero-shot loss Z (its test loss before finetuning) instead of its size:
the reducible part of the finetuned loss is a power of the reducible part of the zero-shot loss
(loss-to-loss prediction, Brandfonbrener et al. 2024) times the rectified data term of Lin et
al. (2024). A covariate law (:mod:`ftscale.laws.covariate`): Z is measured per factor value
(model) in the study. Measured on the demo (translate-en-de, ftlm-1..3 fitted, ftlm-4 and the
largest data size held out): Delta_h FMT 0.041, LoRA 0.037 nats/token, against 0.055 and 0.076
for the laws of model size that cross-validation chose before.
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.covariate import CovariateLaw

#: Z - E below this share of Z counts as none (the prediction is E).
_TINY = 1e-12


class ZeroShotRectifiedLaw(CovariateLaw):
    """L = A * (Z - E)^alpha * (D + D_l)^-beta + E; Z the base model's zero-shot loss
    (nats/token, measured per factor value), D the finetuning data size (examples, 0 allowed),
    D_l the pre-learned data size (examples), L in nats/token."""

    name = "zero_shot_rectified"
    short = "zs-rect"
    formula = "L = A * (Z - E)^alpha * (D + D_l)^-beta + E"
    param_names = ("A", "alpha", "beta", "D_l", "E")
    accepts_zero_data = True
    # 3 * 3 * 4 * 4 * 5 = 720 starts; E from e^-3 to e^1.3 (starts with E >= Z are dropped)
    default_grid = {
        "A": (0.0, 2.0, 4.0),
        "alpha": (0.5, 1.0, 2.0),
        "beta": (0.1, 0.3, 0.6, 1.0),
        "D_l": (-3.0, 2.0, 5.0, 8.0),
        "E": (-3.0, -1.0, 0.3, 1.0, 1.3),
    }
    bounds = {"beta": (0.0, 3.0), "D_l": (-10.0, 16.0)}

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, beta, log_dl, e = (theta[:, k, None] for k in range(5))
        z = np.exp(x)[None, :]
        big_e = np.exp(e)
        # A model at or below the floor (Z <= E: a model better than any the fit saw) has no
        # reducible loss left: its prediction is E, not NaN.
        gap = z - big_e
        room = gap > _TINY * z
        ze = np.log(np.where(room, gap, _TINY * z))
        v = np.logaddexp(d, log_dl)  # log(D + D_l); D = 0 gives log D_l
        s = np.exp(log_dl - v)  # D_l / (D + D_l)
        u = a + alpha * ze - beta * v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)  # share of the reducible term in L_hat
        dze = np.where(room, -big_e / np.where(room, gap, 1.0), 0.0)  # d log(Z - E) / d log E
        de = w * alpha * dze + (1.0 - w)
        g = np.stack([w, ze * w, -v * w, -beta * s * w, de], axis=-1)
        return lp, g
