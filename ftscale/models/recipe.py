"""The pretraining recipe: its defaults, validation, member shapes and peak learning rates, and
the hashes that tie a checkpoint to the recipe that made it."""

from __future__ import annotations

import copy
import hashlib
import json
import math
from typing import Any

from ftscale.errors import UserError
from ftscale.models.family import (
    FAMILY_NAME,
    N_MEMBERS,
    VOCAB_SIZE,
    Shape,
    family_shapes,
    shape_from_dict,
    shape_to_dict,
)

#: The recipe that built the shipped family (``ftscale pretrain --family default``).
#: Every member sees the same tokens in the same order; only the shape differs.
DEFAULT_RECIPE: dict[str, Any] = {
    "family": FAMILY_NAME,
    "members": N_MEMBERS,  # ftlm-1 .. ftlm-6 from the shape rule in ftscale.models.family
    "shapes": None,  # or {name: {n_layer, d_model, n_head, d_ff}} to replace the rule
    "vocab_size": VOCAB_SIZE,
    # Sized to the CPU budget (~40 min for the family on 2 idle cores), not to convergence: at
    # 1,048,576 tokens every size was still step-limited and the loss was not monotone in size.
    "tokens": 4_194_304,  # training tokens per member (4,096 steps of 4 x 256)
    "seq_len": 256,
    # Measured on the pilot: at equal tokens, batch 4 at lr 1e-2 beat batch 8 at lr 3e-3
    # (more, noisier steps win this early in training).
    "batch_size": 4,
    "lr": 1e-2,
    # Peak lr falls with width above this width: lr * min(1, (lr_ref_width / d_model)^2).
    # Measured on the pilot: ftlm-4 (d=96) learnt faster at 1e-2 than at 3e-3, ftlm-6 (d=128)
    # slower (the usual pattern: wider models want a smaller step). null: one lr for all.
    "lr_ref_width": 96,
    # Peak lr of named members, replacing the width rule for them (a per-size lr table, as GPT-3
    # and Pythia use); null: the rule for all. ftlm-5: best of a sweep {7.3e-3 (the rule), 5.6e-3,
    # 4e-3} by mean held-out loss (docs/models.md).
    "member_lr": {"ftlm-5": 5.6e-3},
    "min_lr_ratio": 0.1,
    "warmup_frac": 0.05,
    "weight_decay": 0.1,
    "beta1": 0.9,
    "beta2": 0.95,
    "grad_clip": 1.0,
    "seed": 0,
    # Sampling share of each stream (normalised); null samples in proportion to stream size.
    "stream_weights": None,
    # Members whose intermediate checkpoints are published (pretraining-tokens factor).
    "intermediate_members": ["ftlm-4"],
    "checkpoint_fractions": [0.125, 0.25, 0.5, 1.0],
    # Resume state is saved at least this often (fraction of the run).
    "resume_every_frac": 0.125,
    "eval_windows": 64,  # held-out windows of seq_len tokens per stream
    "log_every": 50,  # steps
}


def recipe_from(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The default recipe with ``overrides`` applied, validated (bad values: :class:`UserError`)."""
    recipe = copy.deepcopy(DEFAULT_RECIPE)
    for key, value in (overrides or {}).items():
        if key not in recipe:
            raise UserError(f"unknown pretraining recipe key {key!r} (known: {sorted(recipe)})")
        recipe[key] = value
    for key in (
        "tokens",
        "seq_len",
        "batch_size",
        "vocab_size",
        "members",
        "eval_windows",
        "log_every",
    ):
        v = recipe[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise UserError(f"recipe: {key} must be a positive integer, got {v!r}")
    for key in ("lr", "warmup_frac", "min_lr_ratio", "resume_every_frac"):
        v = recipe[key]
        if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise UserError(f"recipe: {key} must be a non-negative number, got {v!r}")
    if "member_lr" not in (overrides or {}) and recipe["member_lr"]:
        # The default table names default members: a recipe with other members drops them.
        names = set(recipe_shapes(recipe))
        recipe["member_lr"] = {k: v for k, v in recipe["member_lr"].items() if k in names} or None
    mlr = recipe["member_lr"]
    if mlr is not None and (
        not isinstance(mlr, dict)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in mlr.values()
        )
    ):
        raise UserError(f"recipe: member_lr must map member names to positive numbers, got {mlr!r}")
    if recipe["tokens"] < recipe["seq_len"] * recipe["batch_size"]:
        raise UserError("recipe: tokens must cover at least one batch (batch_size * seq_len)")
    fr = recipe["checkpoint_fractions"]
    if not fr or any(not (0 < f <= 1) for f in fr) or 1.0 not in fr:
        raise UserError("recipe: checkpoint_fractions must lie in (0, 1] and include 1.0")
    return recipe


def recipe_shapes(recipe: dict[str, Any]) -> dict[str, Shape]:
    """Member names and shapes of a recipe, smallest first."""
    if recipe["shapes"]:
        if not isinstance(recipe["shapes"], dict):
            raise UserError("recipe: shapes must map a model name to its shape")
        shapes = {}
        for name, d in recipe["shapes"].items():
            if not isinstance(d, dict):
                raise UserError(f"recipe: shape of {name!r} must be a mapping")
            shapes[str(name)] = shape_from_dict({"vocab_size": recipe["vocab_size"], **d})
        return dict(sorted(shapes.items(), key=lambda kv: kv[1].params_total()))
    return family_shapes(recipe["members"], recipe["vocab_size"])


def recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def peak_lr(recipe: dict[str, Any], shape: Shape, name: str | None = None) -> float:
    """The member's peak learning rate: its ``member_lr`` entry, else the recipe's width rule."""
    table = recipe.get("member_lr") or {}
    if name is not None and name in table:
        return float(table[name])
    ref = recipe.get("lr_ref_width")
    if not ref:
        return float(recipe["lr"])
    return float(recipe["lr"]) * min(1.0, (ref / shape.d_model) ** 2)


#: Recipe keys that do not enter one member's hash: they choose which members exist, or they set
#: the peak lr, which enters as the member's own value (so a lr rule that leaves a member's lr
#: unchanged leaves its checkpoints valid), or they only change logging.
_NOT_MEMBER_KEYS = frozenset(
    {"members", "shapes", "lr", "lr_ref_width", "member_lr", "intermediate_members", "log_every"}
)


def member_hash(recipe: dict[str, Any], name: str, shape: Shape) -> str:
    """Hash of everything that determines member ``name``'s training and its checkpoints (shape,
    peak lr, schedule, data, evaluation, checkpoint steps); recorded in each checkpoint."""
    own = {k: v for k, v in recipe.items() if k not in _NOT_MEMBER_KEYS}
    total_steps = recipe["tokens"] // (recipe["batch_size"] * recipe["seq_len"])
    own.update(
        _name=name,
        _shape=shape_to_dict(shape),
        _peak_lr=peak_lr(recipe, shape, name),
        _checkpoint_steps=checkpoint_steps(name, total_steps, recipe),
    )
    return recipe_hash(own)


def checkpoint_steps(name: str, total_steps: int, recipe: dict[str, Any]) -> list[int]:
    """Steps at which member ``name`` publishes a checkpoint (intermediate ones if asked)."""
    inter = recipe["intermediate_members"]
    if inter == "all" or name in (inter or []):
        steps = {max(1, round(f * total_steps)) for f in recipe["checkpoint_fractions"]}
    else:
        steps = {total_steps}
    return sorted(steps)
