"""``ats``: Accept-then-Stop (Lin et al., ICML 2024, "Selecting Large Language Model to Fine-tune
via Rectified Scaling Law", Algorithm 1), as their published selection code computes it.

Per candidate, in log loss against log data size: starting from the ``k`` largest sizes within
the budget, fit a line and test the next smaller point; while its residual is within ``delta``
standard deviations (population std of the fitted points' residuals) of the line, accept it and
refit. The first point rejected marks the phase transition, and the accepted points (the
post-power phase) are fitted by least squares and the line is extrapolated to the target. As in
the published code, when no point is rejected the smallest point is still left out, and with
``k`` or fewer points every point is used. The lowest extrapolation wins.
"""

from __future__ import annotations

import numpy as np

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod


def post_power_start(logd: np.ndarray, logl: np.ndarray, k: int = 3, delta: float = 5.0) -> int:
    """Index of the first point of the post-power phase of a curve in log-log (ascending sizes),
    by Accept-then-Stop with ``k`` starting points and threshold ``delta`` (residual stds)."""
    n = logd.size
    if n <= k:
        return 0
    m = k
    for m in range(k, n):
        x, y = logd[-m:], logl[-m:]
        slope, icpt = np.polyfit(x, y, 1)
        res_std = np.std(y - (slope * x + icpt))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(logl[-m - 1] - (slope * logd[-m - 1] + icpt)) / res_std
        if z > delta:
            break
    return n - m


def post_power_line(
    logd: np.ndarray, logl: np.ndarray, k: int = 3, delta: float = 5.0
) -> tuple[float, float, int]:
    """(slope, intercept, first index) of the least-squares line through the post-power phase
    of a curve in log-log (ascending sizes, at least 2 points: the phase keeps at least
    min(k, n) of them)."""
    i = post_power_start(logd, logl, k, delta)
    slope, icpt = np.polyfit(logd[i:], logl[i:], 1)
    return float(slope), float(icpt), i


class AtS(SelectionMethod):
    name = "ats"
    min_points = 2
    k = 3
    delta = 5.0

    def predict(self, curves: list[Curve], budget: float, target: float):
        preds = []
        for c in curves:
            logd, logl = np.log(c.sizes), np.log(c.losses)
            slope, icpt, i = post_power_line(logd, logl, self.k, self.delta)
            value = float(np.exp(icpt + slope * np.log(target)))
            preds.append(
                Prediction(
                    c.name,
                    value,
                    int(logd.size - i),
                    value,
                    extra={"slope": slope, "transition_size": float(c.sizes[i])},
                )
            )
        return preds, {"k": self.k, "delta": self.delta}
