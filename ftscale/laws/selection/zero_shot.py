"""``zero-shot``: the candidate with the lowest loss before any finetuning wins.

Source: the ZeroShot baseline of Lin et al. (ICML 2024, "Selecting Large Language Model to
Fine-tune via Rectified Scaling Law"). Needs each candidate's zero-shot loss (data size 0).
"""

from __future__ import annotations

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod


class ZeroShot(SelectionMethod):
    name = "zero-shot"
    min_points = 0
    needs = ("zero_shot",)

    def predict(self, curves: list[Curve], budget: float, target: float):
        return [Prediction(c.name, float(c.zero_shot), int(c.sizes.size)) for c in curves], {}
