"""Joint form of Lin et al.'s rectified law: L(X, D) = A * X^-alpha / (D_l + D^beta) + E.

Lin et al. (2024, "Selecting LLM to fine-tune via rectified scaling law") add the pre-learned
data size D_l to D^beta, after the exponent: D_l is in units of D^beta and carries no exponent of
its own, unlike ``multiplicative_rectified``'s (D + D_l)^-beta, where beta bends D_l with D. The
two forms agree far from the knee (the power law A X^-alpha D^-beta + E once D^beta >> D_l, a
plateau while D^beta << D_l) and differ in how sharp the knee is. D = 0 is a valid point (the
zero-shot loss: A X^-alpha / D_l + E).
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.multiplicative_rectified import MultiplicativeRectifiedLaw
from ftscale.laws.rectified import pre_learned_term


class LinRectifiedLaw(MultiplicativeRectifiedLaw):
    """L = A * X^-alpha / (D_l + D^beta) + E; X a scaling factor, D the finetuning data size
    (examples, 0 allowed), D_l the pre-learned data size (in units of D^beta), L in
    nats/token. The parameters, their box and their starts are multiplicative_rectified's
    (D_l's starts lower: it is in units of D^beta)."""

    name = "lin_rectified"
    short = "lin-rect"
    formula = "L = A * X^-alpha / (D_l + D^beta) + E"
    # Not in "auto": a fourth law to cross-validate costs a third more fitting time (the
    # calibration benchmark's 2.9x today's fit would pass 3x). On the demo its CV error is the
    # lowest for FMT (docs/laws.md): name it in fit.laws to use it.
    in_auto = False
    default_grid = {**MultiplicativeRectifiedLaw.default_grid, "D_l": (-3.0, 1.0, 3.0, 6.0)}

    @staticmethod
    def log_pred(theta, x, d):
        a, alpha, beta, log_dl, e = (theta[:, k, None] for k in range(5))
        dd, v, s = pre_learned_term(log_dl, beta, d)
        u = a - alpha * x - v
        lp = np.logaddexp(u, e)
        w = np.exp(u - lp)  # share of the power term in L_hat
        g = np.stack([w, -x * w, -dd * (1.0 - s) * w, -s * w, 1.0 - w], axis=-1)
        return lp, g
