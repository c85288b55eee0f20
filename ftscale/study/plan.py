"""Planner: expand a study into runs, each with a stable key.

A run's key is :func:`ftscale.finetune.runkey.run_key` of the finetuning config the run will
get: its resolved configuration (method defaults filled in), the hash of the task's data, the
model's weights fingerprint, the code version and the engine's protocol version. So a changed
setting, default, data set, model or ftscale release plans new runs while an unchanged one finds
its finished runs in the store; the engine records the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftscale.study.spec import Study, pet_methods


@dataclass(frozen=True)
class PlannedRun:
    """One finetuning run of a study."""

    run_key: str
    spec: dict[str, Any]


def task_data_hash(task_name: str, source: dict[str, Any] | None = None) -> str:
    """Hash of every split of a task (what a run reads): an embedded task by name, a user
    task by its source (``Study.task_sources``)."""
    from ftscale.data.user import resolve_task
    from ftscale.finetune.runkey import data_fingerprint

    return data_fingerprint(resolve_task(source or task_name))


def plan_study(study: Study, data_hashes: dict[str, str] | None = None) -> list[PlannedRun]:
    """Expand ``study`` into its runs, in a stable order (task, method, model, PET size, data
    size, seed). ``data_hashes`` maps task -> data hash (computed from the corpora if omitted).
    Each key also covers the model's weights fingerprint, read from its checkpoint metadata."""
    from ftscale.finetune.runkey import run_key
    from ftscale.models.registry import model_fingerprint
    from ftscale.study.runfn import spec_to_config

    if data_hashes is None:
        data_hashes = {t: task_data_hash(t, study.task_sources.get(t)) for t in study.tasks}
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
                                **(
                                    {"task_source": study.task_sources[task]}
                                    if task in study.task_sources
                                    else {}
                                ),
                                "training": {
                                    **study.training_for(method),
                                    **study.transfer.training_for(study, method, data_size, seed),
                                },
                            }
                            key = run_key(
                                spec_to_config(spec),
                                data_hash=data_hashes[task],
                                model_id=model_ids[model],
                            )
                            runs.append(PlannedRun(key, spec))
    return runs
