"""Prompt tuning: a soft prompt of P trainable embeddings prepended to every input.

Initialised from the embeddings of P tokens sampled from the vocabulary (the paper's choice).
Implemented directly on ``inputs_embeds`` rather than through PEFT's ``PromptTuningConfig``: the
loop already builds input embeddings, and prepending P rows is all the method needs (PEFT's
wrapper would add its own forward and full-vocabulary logits; see docs/performance.md).
"""

from __future__ import annotations

from typing import Any

from ftscale.finetune.methods.base import Adapted, Method, PetSize


class PromptTuning(Method):
    name = "prompt"
    label, colour = "Prompt", "#2ca02c"
    default_lr = 1e-1  # measured on the family: docs/finetune.md
    pretrained_lr = 3e-2  # 3e-3 .. 3e-1 (Lester et al. 2021: 0.3)
    # the paper's default length 100; a study that does not scale PET size uses 20: our models
    # are tiny and sequences short
    pet = PetSize("prompt_length", "soft prompt length", default=100, study_default=20)

    def check_pet_size(self, model_config: Any, pet_size: int | None, max_length: int) -> None:
        positions = getattr(model_config, "max_position_embeddings", None)
        length = int(pet_size or self.default_pet_size)
        if positions and length + max_length > positions:
            from ftscale.errors import UserError

            raise UserError(
                f"soft prompt length {length} + max length {max_length} tokens exceeds the "
                f"model's {positions} positions"
            )

    def apply(self, model: Any, tokenizer: Any, pet_size: int | None, generator: Any) -> Adapted:
        import torch

        length = int(pet_size or self.default_pet_size)
        for p in model.parameters():
            p.requires_grad_(False)
        emb = model.get_input_embeddings().weight
        special = set(getattr(tokenizer, "all_special_ids", ()))  # never start from <pad>, </s>
        candidates = torch.tensor([i for i in range(emb.shape[0]) if i not in special])
        pick = torch.randint(0, len(candidates), (length,), generator=generator)
        prefix = torch.nn.Parameter(emb.detach()[candidates[pick]].clone().float())
        return Adapted(model=model, prefix=prefix, trainable=[prefix], pet_params=prefix.numel())
