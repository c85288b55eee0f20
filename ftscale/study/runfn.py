"""The function a worker runs for one planned run: the finetuning engine."""

from __future__ import annotations

import os
from typing import Any


def spec_to_config(spec: dict[str, Any]):
    """The :class:`~ftscale.finetune.config.FinetuneConfig` of a planned run."""
    from ftscale.finetune.config import FinetuneConfig
    from ftscale.finetune.methods import METHODS

    kwargs = dict(spec.get("training", {}))
    field = METHODS[spec["method"]].pet_size_field
    if field is not None and spec.get("pet_size") is not None:
        kwargs[field] = int(spec["pet_size"])
    if "threads" not in kwargs and os.environ.get("FTSCALE_THREADS"):
        kwargs["threads"] = int(os.environ["FTSCALE_THREADS"])
    return FinetuneConfig(
        model=spec["model"],
        task=spec["task"],
        task_source=spec.get("task_source"),
        method=spec["method"],
        data_size=int(spec["data_size"]),
        seed=int(spec["seed"]),
        **kwargs,
    )


def finetune_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Finetune as ``spec`` says and return the run's record."""
    from ftscale.finetune import run_finetune

    return run_finetune(spec_to_config(spec))
