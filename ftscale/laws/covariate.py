"""Laws whose factor is a measured covariate of the model, not its size: the base for
:mod:`ftscale.laws.zero_shot_rectified` and :mod:`ftscale.laws.zero_shot_scaled`.

A study varies a factor X (model size, pretraining tokens). A covariate law does not take X
itself but a per-X measurement (``covariate``: the base model's zero-shot loss Z, column
``zero_shot_loss``): two models of one family need not sit on a power law of their size (ours
do not: ftlm-2 -> ftlm-3 gains less zero-shot loss than ftlm-3 -> ftlm-4), but how much a
model gains from finetuning follows how good it already is on the task. Loss-to-loss
prediction (Brandfonbrener et al. 2024, "Loss-to-loss prediction: scaling laws for all
datasets") maps one loss of a model to another by a shifted power law; these laws map the
zero-shot loss to the finetuned loss at every data size.

The fitted law carries ``covariate_map``: the (X, covariate) pairs measured in the study (held-
out factor values too: a zero-shot loss needs no finetuning run). Everything outside the law
still speaks X: :meth:`map_log_x` turns log X into the law's own log covariate, interpolated
linearly in log-log between the measured X and extrapolated from the two end points beyond them
(a local power law of the covariate in X: an estimate, which the report's factor range flags).
The map is built from a table's points by :mod:`ftscale.analysis.covariates` (pandas lives
there: ``ftscale.laws`` imports numpy and scipy only).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw

#: The column a covariate law reads by default: the base model's test loss before finetuning.
ZERO_SHOT = "zero_shot_loss"


class CovariateLaw(ScalingLaw):
    """A two-factor law L(C, D) whose factor is a covariate C(X) measured at each factor value
    X (see the module); ``covariate_map`` = ((X, C), ...) with X and C positive."""

    covariate: ClassVar[str | None] = ZERO_SHOT
    #: The covariate in words, for the answer's text.
    covariate_words: ClassVar[str] = "zero-shot loss"
    n_factors = 2

    def __init__(self, *, covariate_map: tuple[tuple[float, float], ...] | None = None, **kw: Any):
        super().__init__(**kw)
        self.covariate_map = covariate_map

    def map_log_x(self, x: np.ndarray | None) -> np.ndarray | None:
        """log C at log factor values ``x``: the measured pairs' log-log interpolation, linear
        extrapolation from the two end pairs beyond them; a UserError without a map."""
        if x is None:
            return None
        if not self.covariate_map:
            raise UserError(
                f"the {self.name} law needs the {self.covariate} measured at each factor value "
                "(its covariate map); none was given"
            )
        pairs = np.asarray(self.covariate_map, dtype=float)
        lx, lc = np.log(pairs[:, 0]), np.log(pairs[:, 1])
        order = np.argsort(lx)
        lx, lc = lx[order], lc[order]
        x = np.asarray(x, dtype=float)
        out = np.interp(x, lx, lc)
        if lx.size >= 2:
            lo_slope = (lc[1] - lc[0]) / (lx[1] - lx[0])
            hi_slope = (lc[-1] - lc[-2]) / (lx[-1] - lx[-2])
            out = np.where(x < lx[0], lc[0] + lo_slope * (x - lx[0]), out)
            out = np.where(x > lx[-1], lc[-1] + hi_slope * (x - lx[-1]), out)
        return out
