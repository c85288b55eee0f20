"""A covariate law's map from a table's points: the (factor value, covariate) pairs that
:class:`ftscale.laws.covariate.CovariateLaw` carries, and whether a group can have one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw


def covariate_map(
    cls: type[ScalingLaw],
    points: pd.DataFrame,
    *,
    factor: str | None,
    data: str = "data_size",
    target: str = "loss",
) -> tuple[tuple[float, float], ...] | None:
    """The (factor value, covariate) pairs of a group's points for a covariate law ``cls``
    (None for other laws): the mean of the ``covariate`` column per factor value, or, where
    the points lack it, the ``target`` at data size 0 (a wide table's zero-shot column). A
    :class:`UserError` says why there is none: no factor, a factor value without the
    covariate, a value that is not positive, or fewer than two distinct ones (the law would
    have no factor effect to fit)."""
    column = getattr(cls, "covariate", None)
    if column is None:
        return None
    if factor is None or factor not in points:
        raise UserError(f"the {cls.name} law needs a factor (its {column} is measured per value)")
    X = pd.to_numeric(points[factor], errors="coerce")
    if column in points and pd.to_numeric(points[column], errors="coerce").notna().any():
        values = pd.to_numeric(points[column], errors="coerce")
        source = column
    else:
        zero = pd.to_numeric(points[data], errors="coerce") == 0
        values = pd.to_numeric(points[target], errors="coerce").where(zero)
        source = f"{target} at {data} 0"
    per = pd.DataFrame({"x": X, "c": values}).groupby("x")["c"].mean()
    missing = [f"{v:g}" for v, c in per.items() if not np.isfinite(c)]
    if missing:
        raise UserError(
            f"the {cls.name} law needs the {column} (the base model's loss before finetuning) "
            f"at every {factor}; none at {', '.join(missing)}"
        )
    if (per <= 0).any() or (per.index <= 0).any():
        raise UserError(f"the {cls.name} law needs positive {factor} and {source} values")
    if per.nunique() < 2:
        raise UserError(
            f"the {cls.name} law needs at least two distinct {source} values across {factor}"
        )
    return tuple((float(x), float(c)) for x, c in per.items())


def applicable(
    cls: type[ScalingLaw],
    points: pd.DataFrame,
    *,
    factor: str | None,
    data: str = "data_size",
    target: str = "loss",
) -> bool:
    """Whether ``cls`` can be fitted to ``points`` as far as its covariate goes (always, for a
    law without one): ``"auto"`` leaves a covariate law out, without a note, where the points
    do not measure its covariate; a law the user names says why in a note instead."""
    try:
        covariate_map(cls, points, factor=factor, data=data, target=target)
    except UserError:
        return False
    return True
