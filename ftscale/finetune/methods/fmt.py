"""Full-model tuning (FMT): every weight of the base model is trained."""

from __future__ import annotations

from typing import Any

from ftscale.finetune.methods.base import Adapted, Method


class FullTuning(Method):
    name = "fmt"
    label, colour = "FMT", "#1f77b4"
    default_lr = 1e-3  # measured on the family: docs/finetune.md
    pretrained_lr = 3e-5  # pretrained LLMs: 1e-5 .. 1e-4 (TRL: 5e-5)
    starts_as_base = True
    weight_copies = 4  # weights, gradients, two AdamW moments

    def flops_per_token(self, model_size: int, trainable: int) -> float:
        """6 N: every weight has a gradient (trainable = N)."""
        return 6 * model_size

    def apply(self, model: Any, tokenizer: Any, pet_size: int | None, generator: Any) -> Adapted:
        params = list(model.parameters())  # tied embeddings appear once
        for p in params:
            p.requires_grad_(True)
        return Adapted(model=model, prefix=None, trainable=params, pet_params=0)
