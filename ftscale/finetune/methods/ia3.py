"""IA3 (Liu et al., 2022: "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than
In-Context Learning"), through PEFT: learned vectors that rescale the attention keys and values
and the input of the feed-forward down projection, element-wise.

PEFT's defaults for Llama pick exactly those three places (``k_proj``, ``v_proj``, and
``down_proj`` as the feed-forward module); other architectures get PEFT's own mapping. The
vectors start at one, so the adapted model starts as the base model and the initialisation uses
no randomness. IA3 has no size to scale (one vector per place), so it has no PET size.
"""

from __future__ import annotations

from typing import Any

from ftscale.finetune.methods.base import Adapted, Method, peft_adapted


class IA3(Method):
    name = "ia3"
    label, colour = "IA3", "#ff7f0e"
    default_lr = 1e-1  # measured on the family: docs/finetune.md
    pretrained_lr = 3e-3  # T-Few (Liu et al. 2022): 3e-3
    starts_as_base = True

    def apply(self, model: Any, tokenizer: Any, pet_size: int | None, generator: Any) -> Adapted:
        from peft import IA3Config

        return peft_adapted(model, IA3Config(task_type="CAUSAL_LM"))
