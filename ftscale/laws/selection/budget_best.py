"""``budget-best``: the candidate with the lowest loss at the largest data size within the budget
wins, and that loss is its prediction (no change beyond the budget).

Source: the naive rule every selection study compares against; Lin et al. (ICML 2024,
"Selecting Large Language Model to Fine-tune via Rectified Scaling Law") call it SubTuning.
"""

from __future__ import annotations

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod


class BudgetBest(SelectionMethod):
    name = "budget-best"

    def predict(self, curves: list[Curve], budget: float, target: float):
        preds = [
            Prediction(c.name, float(c.losses[-1]), int(c.sizes.size), float(c.losses[-1]))
            for c in curves
        ]
        return preds, {}
