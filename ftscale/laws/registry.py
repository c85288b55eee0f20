"""The law forms, by name. Adding a form: one file with a :class:`ScalingLaw` subclass and one
line in :data:`LAWS`."""

from __future__ import annotations

from ftscale.errors import UserError
from ftscale.laws.additive import AdditiveLaw
from ftscale.laws.additive_rectified import AdditiveRectifiedLaw
from ftscale.laws.base import ScalingLaw
from ftscale.laws.lin_rectified import LinRectifiedLaw
from ftscale.laws.multiplicative import MultiplicativeLaw
from ftscale.laws.multiplicative_rectified import MultiplicativeRectifiedLaw
from ftscale.laws.power import PowerLaw
from ftscale.laws.rectified import RectifiedLaw
from ftscale.laws.rectified_power import RectifiedPowerLaw
from ftscale.laws.zero_shot_rectified import ZeroShotRectifiedLaw
from ftscale.laws.zero_shot_scaled import ZeroShotScaledLaw

LAWS: dict[str, type[ScalingLaw]] = {
    "multiplicative": MultiplicativeLaw,
    "additive": AdditiveLaw,
    "power": PowerLaw,
    "rectified": RectifiedLaw,
    "multiplicative_rectified": MultiplicativeRectifiedLaw,
    "additive_rectified": AdditiveRectifiedLaw,
    "lin_rectified": LinRectifiedLaw,
    "rectified_power": RectifiedPowerLaw,
    "zero_shot_rectified": ZeroShotRectifiedLaw,
    "zero_shot_scaled": ZeroShotScaledLaw,
}


def get_law(name: str) -> type[ScalingLaw]:
    """The law class called ``name``; an unknown name is a :class:`UserError`."""
    try:
        return LAWS[name]
    except KeyError:
        raise UserError(f"unknown law {name!r} (known: {', '.join(LAWS)})") from None


def make_law(name: str, **hyper) -> ScalingLaw:
    """An unfitted law of form ``name`` with the given hyper-parameters."""
    return get_law(name)(**hyper)


def expand_laws(laws: tuple[str, ...] | list[str], n_factors: int = 2) -> list[str]:
    """``laws`` (a study's ``fit.laws``, or ``ftscale fit --law``) with ``"auto"`` replaced by
    every law of the registry with
    ``n_factors`` factors marked ``in_auto`` (in its order), duplicates dropped. A study of one
    model (one factor value) expands ``"auto"`` to the one-factor laws of the data size alone."""
    out: list[str] = []
    for name in laws:
        auto = [k for k, c in LAWS.items() if c.n_factors == n_factors and c.in_auto]
        out += auto if name == "auto" else [name]
    return list(dict.fromkeys(out))
