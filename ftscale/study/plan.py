"""Planner: expand a study into runs, each with a stable key.

A run's key is :func:`ftscale.finetune.runkey.run_key` of the finetuning config the run will
get: its resolved configuration (method defaults filled in), the hash of the task's data, the
model's weights fingerprint, the code version and the engine's protocol version. So a changed
setting, default, data set, model or ftscale release plans new runs while an unchanged one finds
its finished runs in the store; the engine records the same key.
"""

from __future__ import annotations

from collections.abc import Callable
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


def _transfer_settings(study: Study, method: str, data_size: int, seed: int) -> dict[str, Any]:
    """Finetuning settings that turn transfer evaluation on for this run (or none)."""
    if not study.transfer.enabled:
        return {}
    sizes = study.data_sizes[method]
    if study.transfer.data_sizes == "one" and (
        data_size != sizes[len(sizes) // 2] or seed != study.seeds[0]
    ):
        return {}
    return {
        "transfer": True,
        "transfer_shots": list(study.transfer.shots),
        "transfer_examples": study.transfer.sample,
        "transfer_decode": study.transfer.decode,
    }


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
                                    **_transfer_settings(study, method, data_size, seed),
                                },
                            }
                            key = run_key(
                                spec_to_config(spec),
                                data_hash=data_hashes[task],
                                model_id=model_ids[model],
                            )
                            runs.append(PlannedRun(key, spec))
    return runs


def plan_overview(
    study: Study,
    store_path: str,
    *,
    probe: bool = False,
    probe_steps: int = 6,
    progress: Callable[[int, int, tuple], None] | None = None,
) -> dict[str, Any]:
    """The study's runs with their status in the store at ``store_path`` (``new`` where it has
    none, or no store exists yet), their candidate learning rates and estimated seconds:
    ``{"study", "store", "runs", "n_runs", "n_todo", "estimate": {"total_seconds",
    "remaining_seconds", "runs_not_estimated", "startup_seconds_per_worker", "basis"}}``.

    ``probe`` times ``probe_steps`` steps of each (model, method) with no finished run
    (:func:`ftscale.study.estimate.probe_costs`; ``progress(i, n, key)`` before each probe)."""
    from ftscale.errors import UserError
    from ftscale.finetune.rates import lr_candidates
    from ftscale.study.check import check_study_resources
    from ftscale.study.estimate import estimate_runs, probe_costs
    from ftscale.study.runfn import spec_to_config
    from ftscale.study.storage import describe_store, open_store, store_exists

    check_study_resources(study)
    runs = plan_study(study)
    status: dict[str, str] = {}
    measured = []
    if store_exists(store_path):
        with open_store(store_path, must_exist=True) as store:
            for r in store.runs([r.run_key for r in runs]):
                status[r.run_key] = r.status
                if r.status == "done" and r.record:
                    measured.append(r.record)
    if probe_steps <= 0:
        raise UserError(f"--probe-steps must be positive, got {probe_steps}")
    probes, startup = None, None
    if probe:
        measured_pairs = {(m.get("model"), m.get("method")) for m in measured}
        unmeasured = [
            r.spec
            for r in runs
            if status.get(r.run_key) != "done"
            and (r.spec["model"], r.spec["method"]) not in measured_pairs
        ]
        probes, startup = probe_costs(unmeasured, steps=probe_steps, progress=progress)
    est = estimate_runs([r.spec for r in runs], measured, probes)
    rows = [
        {
            "run_key": r.run_key,
            **{k: r.spec[k] for k in ("task", "method", "model", "pet_size", "data_size", "seed")},
            # the candidate rates the run compares on dev (one: no search)
            "lr": lr_candidates(spec_to_config(r.spec)),
            "status": status.get(r.run_key, "new"),
            "est_seconds": e,
        }
        for r, e in zip(runs, est["per_run"], strict=True)
    ]
    todo = [row for row in rows if row["status"] not in ("done", "failed", "diverged")]
    return {
        "study": study.name,
        "store": describe_store(store_path),
        "runs": rows,
        "n_runs": len(rows),
        "n_todo": len(todo),
        "estimate": {
            "total_seconds": est["total_seconds"],
            "remaining_seconds": sum(row["est_seconds"] or 0.0 for row in todo),
            "runs_not_estimated": sum(row["est_seconds"] is None for row in todo),
            "startup_seconds_per_worker": startup,
            "basis": est["basis"],
        },
    }
