"""IA3 (Liu et al., 2022: "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than
In-Context Learning"), through PEFT: learned vectors that rescale the attention keys and values
and the input of the feed-forward down projection, element-wise.

PEFT's defaults for Llama pick exactly those three places (``k_proj``, ``v_proj``, and
``down_proj`` as the feed-forward module); other architectures get PEFT's own mapping. The
vectors start at one, so the adapted model starts as the base model and the initialisation uses
no randomness. IA3 has no size to scale (one vector per place), so it has no PET size.
"""

from __future__ import annotations

import warnings
from typing import Any

from ftscale.finetune.methods.base import Adapted, Method


class IA3(Method):
    name = "ia3"
    label = "IA3"
    colour = "#ff7f0e"
    default_lr = 1e-1  # measured on the family: docs/finetune.md

    def apply(self, model: Any, tokenizer: Any, pet_size: int | None, generator: Any) -> Adapted:
        from peft import IA3Config, get_peft_model

        with warnings.catch_warnings():
            # PEFT calls a transformers method that transformers 5 marks deprecated
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(model, IA3Config(task_type="CAUSAL_LM"))
        base = peft_model.get_base_model()  # same object, IA3 layers injected in place
        trainable = [p for p in base.parameters() if p.requires_grad]
        return Adapted(
            model=base,
            prefix=None,
            trainable=trainable,
            pet_params=sum(p.numel() for p in trainable),
        )
