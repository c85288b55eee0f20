"""The project's model family, its pretraining, and real checkpoints (issue 4).

- :mod:`ftscale.models.family`: the shape rule and the Llama configurations;
- :mod:`ftscale.models.pretrain`: ``ftscale pretrain``, the explicit training loop;
- :mod:`ftscale.models.registry`: names, :class:`ModelInfo`, ``list_models``, ``model_info``,
  ``load_model`` (family checkpoints, local Hugging Face folders, GGUF files).

Importing this package imports neither torch nor transformers.
"""

from __future__ import annotations

from ftscale.models.family import FAMILY_NAME, Shape, family_shapes, llama_config, member_shape
from ftscale.models.pretrain import DEFAULT_RECIPE, pretrain_family, recipe_from
from ftscale.models.registry import (
    FAMILY_DIR,
    ModelInfo,
    list_models,
    load_model,
    load_tokenizer,
    model_info,
)

__all__ = [
    "DEFAULT_RECIPE",
    "FAMILY_DIR",
    "FAMILY_NAME",
    "ModelInfo",
    "Shape",
    "family_shapes",
    "list_models",
    "llama_config",
    "load_model",
    "load_tokenizer",
    "member_shape",
    "model_info",
    "pretrain_family",
    "recipe_from",
]
