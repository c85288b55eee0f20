"""Run keys: the one definition of a finetuning run's identity.

A run's key hashes its *resolved* configuration: every field of the run config with the
method's defaults filled in (learning rate, PET size) and the step budget worked out, plus the
fingerprint of the task's data, of the model's weights, the ftscale version and
:data:`PROTOCOL_VERSION`. So a changed default (a re-measured learning rate) is a changed key by
itself, with no version to bump by hand, while an unchanged run finds its stored result. Fields
that choose where and how fast a run goes, not what it computes (device, threads, compile), are
left out. The planner keys its runs with :func:`run_key` and the engine records the same key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ftscale import __version__
from ftscale.finetune.config import FinetuneConfig, budget_steps
from ftscale.finetune.rates import lr_candidates

#: Bump when the engine computes a different result for the same resolved configuration (a
#: changed loss, schedule or evaluation protocol); a changed default needs no bump.
#: 2: keys hash the resolved configuration (1 was the planner's spec hash, "+r2").
PROTOCOL_VERSION = 2

#: Config fields that do not change a run's result.
NOT_IDENTITY = ("device", "threads", "compile", "report_to", "report_dir")


def resolved_config(config: FinetuneConfig) -> dict[str, Any]:
    """``config`` as a dict with the method's defaults filled in (the learning rate, or the
    candidate rates of ``"auto"``), the step budget worked out (``budget_steps``), settings
    that cannot change the result nulled (``lr_search`` of a single rate, the WSD settings of a
    cosine run), without the fields of :data:`NOT_IDENTITY`."""
    from ftscale.finetune.methods import METHODS

    method = METHODS[config.method]
    out = {k: v for k, v in config.to_dict().items() if k not in NOT_IDENTITY}
    rates = lr_candidates(config)  # "auto" resolved: a re-measured default is a new key
    out["lr"] = rates[0] if len(rates) == 1 else rates
    if len(rates) == 1:
        out["lr_search"] = None  # no search: how one would run does not matter
    if config.schedule != "wsd":
        out["decay"] = out["decay_on_plateau"] = None  # WSD's settings, unused by cosine
    if method.pet_size_field is not None:
        out[method.pet_size_field] = method.pet_size(out[method.pet_size_field])
    if out.get("task_source") is None:
        out.pop("task_source", None)  # embedded tasks: keys as before user tasks existed
    else:  # where the data lies is not its identity: its content hash is (data_fingerprint)
        from ftscale.data.user import source_identity

        out["task_source"] = source_identity(out["task_source"])
    if config.steps is None and config.epochs is None:
        out["steps"] = budget_steps(config)  # the default budget
    out["budget_steps"] = budget_steps(config)
    return out


def data_fingerprint(task: Any) -> str:
    """Hash of every split a run reads (train, dev, test) of ``task`` (``Task.data_hash``)."""
    h = hashlib.sha256()
    for split in ("train", "dev", "test"):
        h.update(f"{split}:{task.data_hash(split)};".encode())
    return h.hexdigest()[:16]


def run_key(config: FinetuneConfig, *, data_hash: str | None, model_id: str | None) -> str:
    """Stable 16-hex-digit key of a run: :func:`resolved_config`, ``data_hash``
    (:func:`data_fingerprint`), ``model_id`` (the weights fingerprint,
    :func:`ftscale.models.registry.model_fingerprint`; None for a model handed in directly),
    the ftscale version and :data:`PROTOCOL_VERSION`."""
    payload = {
        "config": resolved_config(config),
        "data": data_hash,
        "model_id": model_id,
        "code": __version__,
        "protocol": PROTOCOL_VERSION,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
