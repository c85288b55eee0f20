"""Planner: expand a study into runs, each with a stable key.

A run's key is a hash of its full configuration (task, method, model, PET size, data size, seed,
training settings), the hash of the task's data and the code version, so a changed setting, data
set or ftscale release plans new runs while an unchanged one finds its finished runs in the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ftscale import __version__
from ftscale.study.spec import Study, pet_methods

#: Bump when a change to the finetuning engine changes results, so old stored runs are not reused.
RESULTS_VERSION = f"{__version__}+r2"  # r2: default learning rates re-measured


@dataclass(frozen=True)
class PlannedRun:
    """One finetuning run of a study."""

    run_key: str
    spec: dict[str, Any]


def run_key(
    spec: dict[str, Any],
    data_hash: str,
    code_version: str = RESULTS_VERSION,
    model_id: str | None = None,
) -> str:
    """Stable 16-hex-digit key of a run; ``model_id`` is the model's weights fingerprint
    (:func:`ftscale.models.registry.model_fingerprint`), so a rebuilt model plans new runs."""
    payload = {"spec": spec, "data": data_hash, "code": code_version}
    if model_id is not None:
        payload["model_id"] = model_id
    payload = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def task_data_hash(task_name: str) -> str:
    """Hash of every split of a task (what a run reads)."""
    from ftscale.data import get_task

    task = get_task(task_name)
    h = hashlib.sha256()
    for split in ("train", "dev", "test"):
        h.update(f"{split}:{task.data_hash(split)};".encode())
    return h.hexdigest()[:16]


def plan_study(study: Study, data_hashes: dict[str, str] | None = None) -> list[PlannedRun]:
    """Expand ``study`` into its runs, in a stable order (task, method, model, PET size, data
    size, seed). ``data_hashes`` maps task -> data hash (computed from the corpora if omitted).
    Each key also covers the model's weights fingerprint, read from its checkpoint metadata."""
    from ftscale.models.registry import model_fingerprint

    if data_hashes is None:
        data_hashes = {t: task_data_hash(t) for t in study.tasks}
    model_ids = {m: model_fingerprint(m) for m in study.models}
    runs = []
    pet = pet_methods()
    for task in study.tasks:
        for method in study.methods:
            pet_sizes = study.pet_sizes.get(method, (None,)) if method in pet else (None,)
            for model in study.models:
                for pet_size in pet_sizes:
                    for data_size in study.data_sizes[method]:
                        for seed in study.seeds:
                            spec = {
                                "study": study.name,
                                "factor": study.factor,
                                "task": task,
                                "method": method,
                                "model": model,
                                "pet_size": pet_size,
                                "data_size": data_size,
                                "seed": seed,
                                "training": {
                                    **study.training_for(method),
                                    **study.transfer.training_for(study, method, data_size, seed),
                                },
                            }
                            runs.append(
                                PlannedRun(
                                    run_key(spec, data_hashes[task], model_id=model_ids[model]),
                                    spec,
                                )
                            )
    return runs
