"""Zero-shot-scaled joint law: L(Z, D) = A * (Z - E) * (D + D_l)^-beta + E.

:mod:`ftscale.laws.zero_shot_rectified` with alpha = 1: at every data size the finetuned loss
keeps the same share of the zero-shot loss's reducible part Z - E, whatever the model. One
parameter fewer; cross-validation takes it where the data do not ask for alpha (the demo's
prompt tuning: Delta_h 0.014 nats/token, against 0.045 for the additive law of model size).
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.zero_shot_rectified import ZeroShotRectifiedLaw


class ZeroShotScaledLaw(ZeroShotRectifiedLaw):
    """L = A * (Z - E) * (D + D_l)^-beta + E; Z the base model's zero-shot loss (nats/token),
    D the finetuning data size (examples, 0 allowed), D_l the pre-learned data size
    (examples), L in nats/token."""

    name = "zero_shot_scaled"
    short = "zs-scaled"
    formula = "L = A * (Z - E) * (D + D_l)^-beta + E"
    param_names = ("A", "beta", "D_l", "E")
    # 3 * 4 * 4 * 5 = 240 starts
    default_grid = {k: v for k, v in ZeroShotRectifiedLaw.default_grid.items() if k != "alpha"}

    @staticmethod
    def log_pred(theta, x, d):
        full = np.insert(theta, 1, 1.0, axis=1)  # alpha = 1
        lp, g = ZeroShotRectifiedLaw.log_pred(full, x, d)
        return lp, np.delete(g, 1, axis=-1)
