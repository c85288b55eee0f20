"""How a run's learning rates are chosen: one rate, candidates searched on dev, or "auto"."""

from __future__ import annotations

from ftscale.errors import UserError
from ftscale.finetune.config import MAX_LR, FinetuneConfig

#: ``lr = "auto"``: the method's default rate times each of these (a half-decade either side).
AUTO_LR_FACTORS = (1 / 3, 1.0, 3.0)
#: A model ftscale did not pretrain (``lr`` None or ``"auto"``): the method's
#: ``pretrained_lr`` times each of these, a 100x span searched on dev. The family's rates
#: (tuned on models 100-500x smaller) are never applied to such a model unless pinned.
PRETRAINED_LR_FACTORS = (0.1, 1 / 3, 1.0, 3.0, 10.0)


def lr_policy(config: FinetuneConfig) -> str:
    """How a run's rates are chosen (recorded as ``lr_policy``): ``"pinned"`` (one rate or a
    list given), ``"family-default"`` (the method's rate measured on the ftlm family),
    ``"auto"`` (a search around it) or ``"auto-pretrained"`` (a model ftscale did not pretrain,
    ``lr`` None or "auto": :data:`PRETRAINED_LR_FACTORS` times the method's ``pretrained_lr``,
    searched on dev)."""
    if config.lr is not None and not isinstance(config.lr, str):
        return "pinned"
    from ftscale.models.registry import is_pretrained_elsewhere

    if is_pretrained_elsewhere(config.model):
        return "auto-pretrained"
    return "auto" if config.lr == "auto" else "family-default"


def _rounded(rate: float) -> float:
    return float(f"{rate:.3g}")


def lr_candidates(config: FinetuneConfig) -> list[float]:
    """The learning rates a run trains (ascending, no repeats, capped at :data:`MAX_LR`), by
    :func:`lr_policy`: ``[lr]`` or the list given; the method's default rate; that times
    :data:`AUTO_LR_FACTORS` for "auto"; for a model ftscale did not pretrain, its
    ``pretrained_lr`` times :data:`PRETRAINED_LR_FACTORS`."""
    from ftscale.finetune.methods import METHODS

    method = METHODS[config.method]
    default = method.default_lr
    lr = config.lr
    policy = lr_policy(config)
    if policy == "auto-pretrained":
        centre = method.pretrained_lr or default / 30
        return sorted({_rounded(min(MAX_LR, centre * f)) for f in PRETRAINED_LR_FACTORS})
    if lr is None:
        return [float(default)]
    if isinstance(lr, str):
        return sorted({min(MAX_LR, float(default) * f) for f in AUTO_LR_FACTORS})
    if isinstance(lr, list | tuple):
        return sorted({float(v) for v in lr})
    return [float(lr)]


def parse_lr(text: str) -> float | list[float] | str:
    """``--lr`` as typed: ``auto``, one rate (``1e-3``) or comma-separated rates
    (``1e-3,3e-3,1e-2``); UserError for anything else."""
    text = text.strip()
    if text.lower() == "auto":
        return "auto"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(
            f"--lr must be a rate, comma-separated rates or 'auto', got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values
