"""The finetuning optimiser and learning-rate schedules.

Two schedules, both after a linear warm-up over the first ``warmup`` fraction of the budget:

- ``cosine``: cosine down to ``lr * min_lr_ratio`` at the last step of the budget. Early stopping
  (``patience`` dev evaluations without a new best) ends the run wherever it is in the cosine,
  so a run stopped early keeps a checkpoint trained at a high rate.
- ``wsd`` (warmup-stable-decay, Hu et al. 2024 "MiniCPM"; Hägele et al. 2024): the peak rate
  held, then a linear decay to ``lr * min_lr_ratio`` over the last ``decay`` fraction of the
  budget. With ``decay_on_plateau`` the decay starts as soon as the dev loss stops improving
  (``patience`` evaluations without a new best) instead of the run stopping there, and the run
  ends when the decay ends: every run anneals before it ends, and the best-dev checkpoint can be
  one trained at a low rate. The decay never runs past the budget.
"""

from __future__ import annotations

from typing import Any

from ftscale.finetune.config import SCHEDULES, FinetuneConfig
from ftscale.models.training import warmup_cosine

__all__ = ["SCHEDULES", "Schedule", "make_optimizer", "make_schedule"]


class Schedule:
    """The learning rate of one run (or one candidate rate of a search) step by step, and what
    the schedule makes of a dev-loss plateau.

    Args:
        kind: "cosine" or "wsd".
        total: the step budget.
        lr: the peak rate.
        warmup: fraction of ``total`` spent warming up linearly.
        min_ratio: the rate at the end of the decay, as a fraction of ``lr``.
        decay: WSD: fraction of ``total`` the decay lasts (at least one step).
        decay_on_plateau: WSD: a plateau starts the decay (else the run stops there, as with
            cosine).
    """

    def __init__(
        self,
        kind: str,
        total: int,
        lr: float,
        warmup: float,
        min_ratio: float,
        decay: float = 0.2,
        decay_on_plateau: bool = True,
    ) -> None:
        self.kind, self.total, self.lr = kind, int(total), float(lr)
        self.warmup, self.min_ratio = warmup, min_ratio
        self.decay_on_plateau = decay_on_plateau
        self.decay_steps = max(1, int(round(decay * self.total)))
        #: Step after which the WSD decay begins (its default: the budget's last ``decay``).
        self.decay_start = max(0, self.total - self.decay_steps)
        self.plateau_step: int | None = None

    def at(self, step: int) -> float:
        """Learning rate at optimiser step ``step`` (1-based)."""
        w = int(round(self.warmup * self.total))
        if self.kind == "cosine":
            return warmup_cosine(step, self.total, self.lr, w, self.min_ratio)
        if step <= self.decay_start:
            return self.lr * step / w if step <= w else self.lr
        # the decay starts from the rate reached (below the peak if a plateau came in warm-up)
        start = self.lr * min(1.0, self.decay_start / w) if w else self.lr
        frac = min(1.0, (step - self.decay_start) / self.decay_steps)
        return start * (1 - (1 - self.min_ratio) * frac)

    @property
    def end(self) -> int:
        """The last step the schedule runs to (the budget, or the end of a decay that a
        plateau started early)."""
        if self.kind == "wsd":
            return min(self.total, self.decay_start + self.decay_steps)
        return self.total

    def on_plateau(self, step: int) -> bool:
        """The dev loss has stopped improving at ``step``: True when the run should stop (cosine,
        or WSD without ``decay_on_plateau``); WSD otherwise starts its decay after ``step``
        (if it has not begun) and the run goes on to :attr:`end`."""
        if self.kind != "wsd" or not self.decay_on_plateau:
            return True
        if self.plateau_step is None and step < self.decay_start:
            self.plateau_step = step
            self.decay_start = step
        return False

    def in_decay(self, step: int) -> bool:
        """Whether ``step`` lies in the WSD decay (always False for cosine)."""
        return self.kind == "wsd" and step > self.decay_start


def make_schedule(config: FinetuneConfig, total: int, lr: float) -> Schedule:
    """The :class:`Schedule` that ``config`` asks for, over ``total`` steps, peaking at ``lr``."""
    return Schedule(
        config.schedule,
        total,
        lr,
        config.warmup,
        config.min_lr_ratio,
        config.decay,
        config.decay_on_plateau,
    )


def make_optimizer(params: list, config: FinetuneConfig, lr: float, device: Any) -> Any:
    """AdamW (fused on CUDA, foreach on the CPU) or Adafactor over ``params``, at ``lr``."""
    import torch

    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            params,
            lr=lr,
            scale_parameter=False,
            relative_step=False,
            warmup_init=False,
            weight_decay=config.weight_decay,
        )
    kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay, **kw)
