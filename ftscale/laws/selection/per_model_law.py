"""``vanilla`` and ``rectified``: one one-factor law fitted to each candidate on its own, the
lowest extrapolation to the target wins.

- ``vanilla``: the power law L = A * D^-beta + E (Hestness et al. 2017; Kaplan et al. 2020; the
  "vanilla law" baseline of Lin et al., ICML 2024).
- ``rectified``: L = B / (D_l + D^beta) + E (Lin et al., ICML 2024, "Selecting Large Language
  Model to Fine-tune via Rectified Scaling Law"), ftscale's Huber fit from a grid of starts.
"""

from __future__ import annotations

from ftscale.laws.selection.base import Curve, Prediction, SelectionMethod
from ftscale.laws.selection.profile import predict_at_target


class _PerModelLaw(SelectionMethod):
    law: str

    def predict(self, curves: list[Curve], budget: float, target: float):
        preds = []
        for c in curves:
            value, converged = predict_at_target(c.sizes, c.losses, target, self.law)
            preds.append(
                Prediction(c.name, value, int(c.sizes.size), value, extra={"converged": converged})
            )
        return preds, {"law": self.law}


class Vanilla(_PerModelLaw):
    name = "vanilla"
    law = "power"
    min_points = 3


class Rectified(_PerModelLaw):
    name = "rectified"
    law = "rectified"
    min_points = 4
