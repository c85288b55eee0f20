"""What pretraining (:mod:`ftscale.models.loop`) and finetuning (:mod:`ftscale.finetune`) share:
the warm-up + cosine learning-rate schedule, the mean token loss over fixed batches, and the
parameter count of a causal LM (weight tying decided here, once).

Importing this module imports neither torch nor transformers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

__all__ = ["count_parameters", "mean_token_nll", "warmup_cosine"]

T = TypeVar("T")


def warmup_cosine(
    step: int,
    total: int,
    lr: float,
    warmup_steps: int,
    min_ratio: float,
    *,
    convention: Literal["finetune", "pretrain"] = "finetune",
) -> float:
    """Learning rate at optimiser step ``step`` (1-based): linear warm-up to ``lr`` over the
    first ``warmup_steps`` steps (``lr * step / warmup_steps``), then cosine down to
    ``lr * min_ratio``, held there once reached.

    ``convention`` keeps each caller's rates bit for bit:

    - ``"finetune"``: the cosine's first step is ``warmup_steps + 1`` and it reaches its floor
      at step ``total``; computed as ``lr * (r + (1 - r) * (1 + cos) / 2)``.
    - ``"pretrain"`` (nanoGPT's, which trained the shipped family): the cosine's clock runs one
      step behind (its loop counts steps from 0), so the floor comes one step after ``total``;
      computed as ``lr_min + (lr - lr_min) * (1 + cos) / 2``.
    """
    if step <= warmup_steps:
        return lr * step / warmup_steps
    lag = 1 if convention == "pretrain" else 0
    frac = (step - lag - warmup_steps) / max(1, total - warmup_steps)
    cos = 1 + math.cos(math.pi * min(frac, 1.0))
    if convention == "pretrain":
        min_lr = lr * min_ratio
        return min_lr + 0.5 * (lr - min_lr) * cos
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * cos)


def mean_token_nll(
    model: Any, batches: Iterable[T], loss_sum: Callable[[T], tuple[Any, int]], device: Any
) -> float:
    """Mean next-token NLL over ``batches``, nats/token: ``loss_sum(batch)`` gives a batch's
    summed loss (a scalar tensor) and its number of scored tokens. ``model`` is evaluated in
    eval mode without gradients, its training mode restored after; the sum is kept in float64
    on ``device`` and read once (one host sync)."""
    import torch

    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    with torch.no_grad():
        for b in batches:
            s, n = loss_sum(b)
            total += s.double()
            count += n
    model.train(was_training)
    return float(total.item()) / max(count, 1)


def count_parameters(model: Any) -> tuple[int, int]:
    """(all parameters, non-embedding parameters) of a causal LM, real or on the meta device.

    Tying is decided by identity: ``model.parameters()`` yields a shared tensor once, so an
    output head whose weight *is* the input embedding's counts once, and an untied head (its
    own parameter) is an embedding too, taken out of the non-embedding count. Identity, not
    ``data_ptr()``: on the meta device every tensor's pointer is 0.
    """
    params = {id(p): p for p in model.parameters()}
    total = sum(p.numel() for p in params.values())
    emb = model.get_input_embeddings().weight
    embed = emb.numel()
    out = model.get_output_embeddings()
    if out is not None and out.weight is not emb and id(out.weight) in params:
        embed += out.weight.numel()
    return total, total - embed
