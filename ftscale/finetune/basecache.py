"""Losses of a base model, computed once per (model, evaluation set) and reused by later runs.

Every run of a study on one model and task measures the same base-model losses: the zero-shot
test loss, the base model's loss on the forgetting sample, and its dev loss (step 0, the first
checkpoint candidate, for methods that start as the base model). On a real model each costs
tens of seconds on a CPU (SmolLM2-135M: 44 s for the zero-shot test loss); here each is
computed once and stored in ``<cache>/base_losses/<key>.json`` (``cache`` as for converted
GGUF files, :func:`ftscale.models.gguf.cache_dir`).

The key hashes what decides the number and nothing else: the model's weights fingerprint
(:func:`ftscale.models.registry.model_fingerprint`), the exact token ids of the evaluation
examples and where each target starts (so the task's data, sample, prompt template and
``max_length`` are all in it), the numeric precision and the device type, and
:data:`CACHE_VERSION`. A model handed to the engine directly has no fingerprint: nothing is
cached for it. ``FTSCALE_NO_BASE_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Bump when the evaluation computes a different loss for the same inputs.
CACHE_VERSION = 1


def cache_key(model_id: str, encoded: Any, precision: str, device_type: str) -> str:
    """32 hex digits naming one base-model loss: ``model_id``, the ids and prompt lengths of
    ``encoded`` (a :class:`ftscale.finetune.batching.Encoded`), ``precision`` and
    ``device_type``."""
    h = hashlib.sha256(f"v{CACHE_VERSION};{model_id};{precision};{device_type};".encode())
    for ids, n in zip(encoded.ids, encoded.n_prompt, strict=True):
        h.update(f"{len(ids)}:{n}:".encode())
        h.update(ids.tobytes())
    return h.hexdigest()[:32]


def _path(key: str) -> Path:
    from ftscale.models.gguf import cache_dir

    return cache_dir() / "base_losses" / f"{key}.json"


def base_loss(
    model_id: str | None,
    encoded: Any,
    precision: str,
    device_type: str,
    compute: Callable[[], float],
    what: str,
) -> tuple[float, bool]:
    """``(loss, cached)``: the stored loss of this base model on ``encoded``, else ``compute()``
    (stored when finite). ``what`` ("zero_shot", "dev", "forget") is recorded beside it."""
    if model_id is None or os.environ.get("FTSCALE_NO_BASE_CACHE"):
        return compute(), False
    path = _path(cache_key(model_id, encoded, precision, device_type))
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        loss = stored["loss"]
        if isinstance(loss, float) and math.isfinite(loss):
            return loss, True
    except (OSError, ValueError, KeyError, TypeError):
        pass  # absent or unreadable: compute it again
    loss = compute()
    if math.isfinite(loss):
        from ftscale.fsutil import atomic_write

        try:
            with atomic_write(path) as fh:
                json.dump(
                    {"loss": loss, "what": what, "model_id": model_id, "examples": len(encoded)},
                    fh,
                )
        except Exception:  # noqa: BLE001 - a cache that cannot be written costs time, not results
            pass
    return loss, False
