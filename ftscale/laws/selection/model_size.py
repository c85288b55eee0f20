"""``model-size``: the candidate with the most parameters wins (score: minus log parameters).

Source: the ModelSize baseline of Lin et al. (ICML 2024, "Selecting Large Language Model to
Fine-tune via Rectified Scaling Law"). Needs each candidate's size; it predicts no loss.
"""

from __future__ import annotations

import math

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod


class ModelSize(SelectionMethod):
    name = "model-size"
    min_points = 0
    needs = ("size",)

    def predict(self, curves: list[Curve], budget: float, target: float):
        return [Prediction(c.name, -math.log(c.size), int(c.sizes.size)) for c in curves], {}
