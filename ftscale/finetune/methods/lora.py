"""LoRA: rank-r updates on every attention and feed-forward projection (through PEFT).

As in the paper, the adapters sit on the attention projections (q, k, v, o) and the feed-forward
projections (gate, up, down for Llama); PEFT's ``"all-linear"`` selects exactly the linear layers
inside the blocks and leaves the output head alone. ``lora_alpha = 2 r`` keeps the update's scale
(alpha / r) the same at every rank, so one learning rate serves a rank sweep.
"""

from __future__ import annotations

from typing import Any

from ftscale.finetune.methods.base import Adapted, Method, PetSize, peft_adapted


class LoRA(Method):
    name = "lora"
    label, colour = "LoRA", "#d62728"
    default_lr = 1e-2  # measured on the family: docs/finetune.md
    pretrained_lr = 3e-4  # pretrained LLMs: 1e-4 .. 1e-3 (QLoRA: 2e-4)
    starts_as_base = True
    pet = PetSize("rank", "LoRA rank", default=4)  # the paper's default rank

    def check_pet_size(self, model_config: Any, pet_size: int | None, max_length: int) -> None:
        hidden = getattr(model_config, "hidden_size", None)
        if pet_size is not None and hidden and pet_size > hidden:
            from ftscale.errors import UserError

            raise UserError(
                f"LoRA rank {pet_size} exceeds the model's hidden size {hidden}: a rank above "
                "it adds parameters without adding capacity"
            )

    def apply(self, model: Any, tokenizer: Any, pet_size: int | None, generator: Any) -> Adapted:
        import torch
        from peft import LoraConfig

        rank = int(pet_size or self.default_pet_size)
        cfg = LoraConfig(
            r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none", target_modules="all-linear"
        )
        # PEFT initialises lora_A from torch's global RNG: seed it from the run's generator so the
        # adapter init is part of the run's seed.
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        return peft_adapted(model, cfg)
