"""Model selection from cheap runs: which candidate to finetune, judged from small-data runs.

One file per method, registered in :data:`METHODS` (name -> class); :func:`select` runs one on
a list of :class:`~ftscale.laws.selection.base.Curve`. ``ftscale`` is the default (see its
module for how it was designed and measured); the others are the published baselines and
ftscale's earlier rule, each naming its source.
"""

from __future__ import annotations

from typing import Any

from ftscale.errors import UserError
from ftscale.laws.selection.ats import AtS
from ftscale.laws.selection.base import (
    Curve,
    Prediction,
    SelectionMethod,
    check_inputs,
    make_curve,
)
from ftscale.laws.selection.budget_best import BudgetBest
from ftscale.laws.selection.confident import ConfidentFlip
from ftscale.laws.selection.model_size import ModelSize
from ftscale.laws.selection.per_model_law import Rectified, Vanilla
from ftscale.laws.selection.pooled import Pooled
from ftscale.laws.selection.profile import predict_at_target, select_model, target_profile
from ftscale.laws.selection.simulate import Candidate, compare_rules, simulate_candidates
from ftscale.laws.selection.zero_shot import ZeroShot

METHODS: dict[str, type[SelectionMethod]] = {
    "ftscale": Pooled,
    "budget-best": BudgetBest,
    "zero-shot": ZeroShot,
    "model-size": ModelSize,
    "vanilla": Vanilla,
    "rectified": Rectified,
    "ats": AtS,
    "confident-flip": ConfidentFlip,
}
DEFAULT_METHOD = "ftscale"


def get_method(name: str) -> SelectionMethod:
    """The selection method registered as ``name`` (UserError listing the names otherwise)."""
    try:
        return METHODS[name]()
    except KeyError:
        raise UserError(
            f"unknown selection method {name!r}; choose from {', '.join(METHODS)}"
        ) from None


def select(
    curves: list[Curve], budget: float, target: float, method: str = DEFAULT_METHOD
) -> dict[str, Any]:
    """Rank ``curves`` by ``method`` from their points at data sizes <= ``budget`` (examples)
    for the loss at ``target`` examples.

    Returns ``{"method", "budget", "target", "predictions": [{"model", "predicted_loss"
    (nats/token or None), "predicted_loss_ci" ([lo, hi] or None), "p_best" (or None), "score"
    (lower is better), "n_points", ...}] (best first), "best", "p_best", ...}`` plus the
    method's own fields.
    """
    m = get_method(method)
    cut = check_inputs(m, curves, budget, target)
    preds, info = m.predict(cut, budget, target)
    ordered = bool(info.pop("ordered", False))
    if not ordered:
        preds = sorted(preds, key=lambda p: (p.score, p.model))
    return {
        "method": m.name,
        "budget": budget,
        "target": target,
        "predictions": [p.as_dict() for p in preds],
        "best": preds[0].model,
        "p_best": preds[0].p_best,
        **info,
    }


__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "Candidate",
    "Curve",
    "Prediction",
    "SelectionMethod",
    "compare_rules",
    "get_method",
    "make_curve",
    "predict_at_target",
    "select",
    "select_model",
    "simulate_candidates",
    "target_profile",
]
