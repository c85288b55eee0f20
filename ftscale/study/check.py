"""What a study file needs from the world, checked before any run: its tasks exist and hold the
data sizes asked for, its models load their configs, and its factor varies across them.

:func:`ftscale.study.spec.parse_study` checks the file itself (keys, types, ranges); this module
checks it against the embedded data and the models, which costs a model config read each (no
weights), so ``study plan`` and ``study run`` (and :func:`ftscale.study.runner.run_study`) call it
once. A study run through a substitute run function (``FTSCALE_RUN_FN``, the test harness)
trains nothing real, and is not checked against real data.
"""

from __future__ import annotations

import os

from ftscale.errors import UserError
from ftscale.study.executors.base import RUN_FN_ENV
from ftscale.study.spec import Study


def check_study_resources(study: Study) -> None:
    """UserError naming the study key for the first thing of the world that does not fit."""
    if os.environ.get(RUN_FN_ENV):
        return
    from ftscale.data.user import resolve_task

    where = str(study.path) if study.path is not None else None
    for name in study.tasks:
        try:
            task = resolve_task(study.task_sources.get(name) or name)
        except UserError as exc:
            raise UserError(f"study.tasks: {exc}", path=where) from None
        counts = task.counts()
        if counts.get("train", 0) == 0:
            raise UserError(
                f"study.tasks: task {name!r} has no train split (a zero-shot evaluation set); "
                "finetune on a task with training data",
                path=where,
            )
        for method, sizes in study.data_sizes.items():
            if max(sizes) > counts["train"]:
                raise UserError(
                    f"data_sizes.{method}: {max(sizes)} examples exceed the {counts['train']} "
                    f"training examples of {name}",
                    path=where,
                )
        for split in ("dev", "test"):
            if counts.get(split, 0) == 0:
                raise UserError(f"study.tasks: task {name!r} has no {split} split", path=where)
    from ftscale.models import model_info

    infos = []
    for name in study.models:
        try:
            infos.append(model_info(name))
        except UserError as exc:
            raise UserError(f"study.models: {name}: {exc}", path=where) from None
    if study.factor == "model_size" and len({i.model_size for i in infos}) < 2:
        raise UserError(
            "study.factor: model_size does not vary across study.models (every model has "
            f"{infos[0].model_size:,} parameters); give models of different sizes",
            path=where,
        )
    if study.factor == "pretrain_tokens":
        tokens = [i.pretrain_tokens for i in infos]
        if any(t is None for t in tokens):
            missing = study.models[tokens.index(None)]
            raise UserError(
                f"study.factor: pretrain_tokens is unknown for {missing!r} (its metadata does not "
                "say); a pretrain_tokens study needs checkpoints that record it",
                path=where,
            )
        if len(set(tokens)) < 2:
            raise UserError(
                "study.factor: pretrain_tokens does not vary across study.models (every "
                f"checkpoint saw {tokens[0]:,} tokens); give checkpoints of one model at "
                "different token counts",
                path=where,
            )
