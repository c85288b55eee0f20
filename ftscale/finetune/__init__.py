"""One finetuning run: methods registry (fmt, lora, prompt), the training loop, metrics.

``run_finetune(config) -> dict`` is what the ``ftscale finetune`` command and the study engine
call. Importing this package does not import torch; a run does.
"""

from __future__ import annotations

from ftscale.finetune.config import FinetuneConfig, validate
from ftscale.finetune.engine import run_finetune
from ftscale.finetune.methods import METHODS

__all__ = ["METHODS", "FinetuneConfig", "run_finetune", "validate"]
