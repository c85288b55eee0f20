"""``confident-flip``: budget-best unless the profile likelihoods of a rectified (or power) law
fitted per candidate are confident (0.9) that another candidate ends lower at the target.

Source: ftscale (issue 2; its default until issue 12); details in
:mod:`ftscale.laws.selection.profile`.
"""

from __future__ import annotations

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod
from ftscale.laws.selection.profile import select_model


class ConfidentFlip(SelectionMethod):
    name = "confident-flip"
    min_points = 4

    def predict(self, curves: list[Curve], budget: float, target: float):
        sel = select_model({c.name: (c.sizes, c.losses) for c in curves}, budget, target)
        preds = [
            Prediction(
                p["model"],
                float(rank),
                p["n_points"],
                p["predicted_loss"],
                p["predicted_loss_ci"],
                p["p_best"],
                extra={"converged": p["converged"]},
            )
            for rank, p in enumerate(sel["predictions"])
        ]
        info = {k: v for k, v in sel.items() if k not in ("predictions", "best", "p_best")}
        return preds, {**info, "ordered": True}
