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
                data = f" ({task.where})" if getattr(task, "where", None) else ""
                raise UserError(
                    f"data_sizes.{method}: {max(sizes)} examples exceed the {counts['train']} "
                    f"training examples of {name}{data}",
                    path=where,
                )
        for split in ("dev", "test"):
            if counts.get(split, 0) == 0:
                raise UserError(f"study.tasks: task {name!r} has no {split} split", path=where)
        if getattr(task, "strict", False):
            _check_response_lengths(study, task)
    from ftscale.models import model_info

    infos = []
    for name in study.models:
        try:
            infos.append(model_info(name))
        except UserError as exc:
            raise UserError(f"study.models: {name}: {exc}", path=where) from None
    if study.factor == "model_size" and len(infos) > 1 and len({i.model_size for i in infos}) < 2:
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
        if len(tokens) > 1 and len(set(tokens)) < 2:
            raise UserError(
                "study.factor: pretrain_tokens does not vary across study.models (every "
                f"checkpoint saw {tokens[0]:,} tokens); give checkpoints of one model at "
                "different token counts",
                path=where,
            )


def _check_response_lengths(study: Study, task) -> None:
    """A user task's responses must fit ``max_length`` with every model's tokenizer (else the
    run would fail after loading its model): UserError naming the first too-long example."""
    from ftscale.finetune.config import FinetuneConfig
    from ftscale.models import load_tokenizer

    default = FinetuneConfig.__dataclass_fields__["max_length"].default
    limit = min(study.training_for(m).get("max_length", default) for m in study.methods)
    examples = [e for split in ("train", "dev", "test") for e in task.split(split)]
    if task.kind == "text" or not examples:
        return
    for model in study.models:
        try:
            tok = load_tokenizer(model)
        except UserError:
            return  # the model check below names the model
        lengths = tok([e.target for e in examples], add_special_tokens=False)["input_ids"]
        for e, ids in zip(examples, lengths, strict=True):
            if len(ids) + 1 > limit:
                raise e.error(
                    f"the response is {len(ids) + 1} tokens with {model}'s tokenizer, longer "
                    f"than max_length ({limit}); raise training.max_length or drop the example"
                )
