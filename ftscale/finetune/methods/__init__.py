"""Finetuning methods registry: one file per method, one line per method in ``METHODS``."""

from __future__ import annotations

from ftscale.finetune.methods.base import Adapted, Method
from ftscale.finetune.methods.fmt import FullTuning
from ftscale.finetune.methods.lora import LoRA
from ftscale.finetune.methods.prompt import PromptTuning

#: name -> method. Adding a method: a file in this folder and one line here.
METHODS: dict[str, Method] = {
    "fmt": FullTuning(),
    "lora": LoRA(),
    "prompt": PromptTuning(),
}

__all__ = ["METHODS", "Adapted", "Method"]
