"""What every selection method shares: a candidate's curve, a method's predictions, the checks.

A candidate is one thing a user could finetune (a model, or a model x method pair), seen through
its losses (nats/token) at a few finetuning data sizes (examples), optionally with its zero-shot
loss (data size 0) and covariates a method may use (its parameter count, its family). A selection
method turns the candidates' points up to the budget into a score per candidate (lower is better;
a predicted loss at the target where the method predicts one) and so into a ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from ftscale.errors import UserError


@dataclass(frozen=True)
class Curve:
    """One candidate: losses ``losses`` (nats/token) at data sizes ``sizes`` (examples > 0,
    ascending), ``zero_shot`` its loss before finetuning (None: not measured), ``size`` its
    parameter count (None: not given), ``family`` its model family (None: not given), ``meta``
    any other columns of the table."""

    name: str
    sizes: np.ndarray
    losses: np.ndarray
    zero_shot: float | None = None
    size: float | None = None
    family: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def within(self, budget: float) -> Curve:
        """This curve with only the points at data sizes <= ``budget`` (examples)."""
        keep = self.sizes <= budget
        return replace(self, sizes=self.sizes[keep], losses=self.losses[keep])


def make_curve(name: str, sizes: Any, losses: Any, **extra: Any) -> Curve:
    """A :class:`Curve` from any sequences, sorted by data size; checks positivity and
    finiteness (UserError naming the candidate)."""
    D = np.asarray(sizes, dtype=float).ravel()
    L = np.asarray(losses, dtype=float).ravel()
    if D.shape != L.shape:
        raise UserError(f"model {name!r}: one loss per data size is needed")
    if np.any(~np.isfinite(D)) or np.any(D <= 0):
        raise UserError(f"model {name!r}: data sizes must be positive and finite")
    if np.any(~np.isfinite(L)) or np.any(L <= 0):
        raise UserError(f"model {name!r}: losses must be positive and finite")
    if np.unique(D).size != D.size:
        raise UserError(f"model {name!r}: a data size appears twice (average seeds first)")
    z = extra.get("zero_shot")
    if z is not None and not (np.isfinite(z) and z > 0):
        raise UserError(f"model {name!r}: the zero-shot loss must be positive and finite")
    s = extra.get("size")
    if s is not None and not (np.isfinite(s) and s > 0):
        raise UserError(f"model {name!r}: the model size must be positive and finite")
    order = np.argsort(D)
    return Curve(str(name), D[order], L[order], **extra)


@dataclass
class Prediction:
    """A method's verdict on one candidate: ``score`` (lower is better), ``predicted_loss`` at
    the target (nats/token; None for methods that only rank), its ``predicted_loss_ci``
    (None where the method has no interval), ``p_best`` (the confidence that it is the best;
    None where the method has none) and ``n_points`` used."""

    model: str
    score: float
    n_points: int
    predicted_loss: float | None = None
    predicted_loss_ci: list[float] | None = None
    p_best: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {
            "model": self.model,
            "predicted_loss": self.predicted_loss,
            "predicted_loss_ci": self.predicted_loss_ci,
            "p_best": self.p_best,
            "score": self.score,
            "n_points": self.n_points,
        }
        out.update(self.extra)
        return out


class SelectionMethod:
    """A way to rank candidates from their points up to the budget. Subclasses set ``name``,
    ``min_points`` (points <= budget each candidate needs), ``needs`` (``"zero_shot"``,
    ``"size"``: what every candidate must carry) and implement :meth:`predict`."""

    name: ClassVar[str]
    min_points: ClassVar[int] = 1
    needs: ClassVar[tuple[str, ...]] = ()

    def predict(
        self, curves: list[Curve], budget: float, target: float
    ) -> tuple[list[Prediction], dict[str, Any]]:
        """Predictions for ``curves`` (already cut to the budget; examples) at ``target``
        examples, in any order, and method-specific fields for the result. A method that ranks
        by its own rule rather than by score returns its predictions in that order and sets
        ``"ordered": True`` in the fields."""
        raise NotImplementedError


_NEEDS_TEXT = {
    "zero_shot": "a zero-shot loss (a `0` column, or rows with data_size 0)",
    "size": "a model size (a `size` or `model_size` column)",
}


def check_inputs(
    method: SelectionMethod, curves: list[Curve], budget: float, target: float
) -> list[Curve]:
    """The candidates cut to ``budget``, after the checks every method shares (UserError)."""
    if not curves:
        raise UserError("no candidate models to select from")
    if not (np.isfinite(budget) and budget > 0 and np.isfinite(target) and target > 0):
        raise UserError("the budget and the target must be positive, finite data sizes")
    if target <= budget:
        raise UserError(
            f"the target ({target:g} examples) must be larger than the budget ({budget:g}): "
            "inside the budget there is nothing to predict"
        )
    names = [c.name for c in curves]
    if len(set(names)) != len(names):
        raise UserError("a candidate appears twice")
    smallest = min((float(c.sizes[0]) for c in curves if c.sizes.size), default=None)
    cut = [c.within(budget) for c in curves]
    if all(c.sizes.size == 0 for c in cut):
        where = f" (the smallest is {smallest:g})" if smallest is not None else ""
        raise UserError(f"the budget {budget:g} is below every data size{where}")
    for need in method.needs:
        missing = [c.name for c in cut if getattr(c, need) is None]
        if missing:
            raise UserError(
                f"method {method.name!r} needs {_NEEDS_TEXT[need]} for every candidate; "
                f"{len(missing)} have none (first: {missing[0]!r})"
            )
    short = [c for c in cut if c.sizes.size < method.min_points]
    if short:
        c = short[0]
        raise UserError(
            f"model {c.name!r}: {c.sizes.size} data sizes <= budget {budget:g}, method "
            f"{method.name!r} needs at least {method.min_points}"
        )
    return cut
