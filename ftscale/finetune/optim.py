"""The finetuning optimiser and learning-rate schedule (warm-up, then cosine)."""

from __future__ import annotations

import math
from typing import Any

from ftscale.finetune.config import FinetuneConfig


def lr_at(step: int, total: int, lr: float, warmup: float, min_ratio: float) -> float:
    """Learning rate at optimiser step ``step`` (1-based): linear warm-up over the first
    ``warmup`` fraction of ``total`` steps, then cosine down to ``lr * min_ratio``."""
    w = int(round(warmup * total))
    if step <= w:
        return lr * step / w
    frac = (step - w) / max(1, total - w)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


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
