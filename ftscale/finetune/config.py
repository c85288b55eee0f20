"""The configuration of one finetuning run, and its validation (bad values -> UserError)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config

from ftscale.errors import UserError, problem
from ftscale.finetune.methods import METHODS, pet_size_fields

#: Learning rates outside (0, MAX_LR] are refused: above 1 every optimiser here diverges at once.
MAX_LR = 1.0
#: More candidate rates than this in one run is a typo, not a search.
MAX_LR_CANDIDATES = 16
#: Learning-rate schedules (``ftscale.finetune.optim.Schedule``).
ScheduleName = Literal["cosine", "wsd"]
SCHEDULES = get_args(ScheduleName)
#: Trackers ``report_to`` names (:mod:`ftscale.finetune.trackers`).
Tracker = Literal["tensorboard", "mlflow"]
#: Fewest tokens per example that leave room for a prompt and a target.
MIN_LENGTH = 8
DEFAULT_STEPS = 200
#: Demonstrations per transfer prompt (the run's and the study's default).
TRANSFER_SHOTS = (0, 1, 5)
Pos = Annotated[int, Field(gt=0)]
PosInt = Annotated[int, Field(ge=1)]  # "must be a positive integer"
NonNeg = Annotated[int, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Rate = Annotated[float, Field(gt=0, le=MAX_LR)]


@with_config(ConfigDict(strict=True, allow_inf_nan=False, revalidate_instances="always"))
@dataclass
class FinetuneConfig:
    """One run. Sizes in examples/tokens/steps; ``lr`` None means the method's measured default.

    What each setting does (the budget and its clamps, early stopping, the schedules, the
    learning-rate search, the evaluation samples, step 0 as a checkpoint candidate) is written
    once, in docs/finetune.md ("Objective and protocol"). Types and bounds are the annotations;
    :func:`validate` checks them (pydantic) and the settings' combinations. The PET-size fields
    (``rank``, ``prompt_length``) are one per field the registered methods name
    (:func:`ftscale.finetune.methods.pet_size_fields`, a test checks that they agree); None
    means the method's default.
    """

    model: str
    task: str  # an embedded task's name, a data file, or the name of ``task_source``'s task
    method: str = "lora"
    data_size: Pos = 1000
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    steps: Pos | None = None
    epochs: Annotated[float, Field(gt=0)] | None = None
    min_steps: PosInt | None = None  # clamps an epoch budget from below (epochs only)
    max_steps: PosInt | None = None  # clamps an epoch budget from above (epochs only)
    batch_size: Pos = 16  # examples per step
    max_length: Annotated[int, Field(ge=MIN_LENGTH)] = 256  # tokens per example (longer: cut)
    lr: (
        Rate
        | Annotated[list[Rate], Field(min_length=1, max_length=MAX_LR_CANDIDATES)]
        | Literal["auto"]
        | None
    ) = None  # a rate, candidate rates, or "auto"
    lr_search: Literal["halving", "grid"] = "halving"  # how several candidate rates are compared
    schedule: ScheduleName = "cosine"  # wsd: warmup-stable-decay
    decay: Annotated[float, Field(gt=0, le=1)] = 0.2  # wsd: fraction of the budget the decay lasts
    decay_on_plateau: bool = True  # wsd: a dev-loss plateau starts the decay (else: stop)
    optimizer: Literal["adamw", "adafactor"] = "adamw"
    weight_decay: Fraction = 0.0
    warmup: Fraction = 0.1  # fraction of the budget spent warming up linearly
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1  # the cosine ends at lr * min_lr_ratio
    grad_clip: Annotated[float, Field(ge=0)] = 1.0  # max global grad norm (0: off)
    eval_every: NonNeg = 20  # steps between dev evaluations (0: only at the end)
    patience: NonNeg = 3  # dev evaluations without a new best before stopping (0: never)
    dev_examples: PosInt = 100
    test_examples: PosInt = 200
    decode_examples: NonNeg = 50  # 0: no generation metrics
    max_new_tokens: Pos = 64
    zero_shot: bool = True  # also measure the base model's test loss before finetuning
    base_candidate: bool = True  # step 0 (before any step) competes in the best-dev choice
    device: Annotated[str, Field(pattern=r"^(cpu|mps|cuda(:[0-9]+)?)$")] = "cpu"
    threads: PosInt | None = 1  # torch intra-op threads on CPU (1 was ~10x faster than 2 here)
    compile: bool = False  # torch.compile the decoder (CUDA)
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 autocast on CUDA, else fp32
    # Transfer (ftscale.finetune.transfer): base and finetuned model on related tasks, few-shot
    transfer: bool = False
    transfer_tasks: list[str] | None = None  # None: every zero-shot set of the target language
    transfer_shots: list[NonNeg] = field(default_factory=lambda: list(TRANSFER_SHOTS))
    transfer_examples: PosInt = 16  # items per related task for the loss
    transfer_decode: NonNeg = 8  # of those, items greedy-decoded for BLEU/chrF (0: none)
    # Forgetting (ftscale.finetune.forget): loss on general text before and after finetuning
    forget_examples: NonNeg = 16  # windows of ``max_length`` tokens (0: off)
    forget_text: str | None = None  # a UTF-8 text file; None: the embedded held-out text
    # A user task: ftscale.data.user.TaskSource as a dict; None: ``task`` names or is the data
    task_source: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, copied into the record
    # Trackers (ftscale.finetune.trackers): "tensorboard", "mlflow"; logs under report_dir.
    report_to: list[Tracker] = field(default_factory=list)
    report_dir: str | None = None  # None: runs/trackers
    rank: PosInt | None = None  # LoRA rank
    prompt_length: PosInt | None = None  # prompt-tuning virtual tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_ADAPTER = TypeAdapter(FinetuneConfig)
#: Names in messages where the field's own name says less.
_LABELS = {"decay": "decay fraction", "warmup": "warm-up fraction", "report_to": "tracker"}
#: What a field must be, where its bounds alone say less.
_MUST = {
    "report_to": "must be a list of tracker names",
    "transfer_shots": "must be non-negative integers",
    "seed": "must be an integer in [0, 2^32)",
    "lr": f"must lie in (0, {MAX_LR}]: a finite number, a list of 1 to {MAX_LR_CANDIDATES} "
    "rates or 'auto'",
}


def _check_combinations(config: FinetuneConfig) -> None:
    method = METHODS[config.method]
    for name in pet_size_fields():
        if getattr(config, name) is not None and method.pet_size_field != name:
            raise UserError(
                f"--{name.replace('_', '-')} does not apply to method {config.method!r}"
            )
    if config.steps is not None and config.epochs is not None:
        raise UserError("give a budget in steps or in epochs, not both")
    for name in ("min_steps", "max_steps"):
        if getattr(config, name) is not None and config.epochs is None:
            raise UserError(f"{name.replace('_', ' ')} clamps an epoch budget: give epochs too")
    if (config.min_steps or 0) > (config.max_steps or math.inf):
        raise UserError(
            f"min steps ({config.min_steps}) cannot exceed max steps ({config.max_steps})"
        )
    if config.transfer and config.transfer_decode > config.transfer_examples:
        raise UserError("transfer decode examples cannot exceed transfer examples")
    if config.task_source is not None:
        from ftscale.data.user import make_source

        make_source(config.task_source)
    if config.forget_text is not None and config.forget_examples:
        from ftscale.finetune.forget import read_forget_text

        read_forget_text(config.forget_text)  # unreadable or empty: UserError before any model


def validate(config: FinetuneConfig) -> None:
    """Raise UserError for any value that cannot give a meaningful run (before loading anything):
    the first wrong type or bound (``steps must be positive, got 0``), then the combinations.
    The error's ``key`` is the field at fault (None for a combination)."""
    if config.method not in METHODS:
        raise UserError(f"unknown method {config.method!r} (known: {', '.join(sorted(METHODS))})")
    try:
        _ADAPTER.validate_python(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0])
        label = _LABELS.get(key, key.replace("_", " "))
        text = problem(err)
        if key in _MUST and not (key == "report_to" and len(err["loc"]) > 1):
            name = "learning rate" if key == "lr" else key.replace("_", " ")
            got = getattr(config, key)
            error = UserError(f"{name} {_MUST[key]}, got {got!r}")
        elif text.startswith("unknown value"):
            error = UserError(f"unknown {label} {text.removeprefix('unknown value ')}")
        else:
            error = UserError(f"{label} {text}")
        error.key, error.type_error = key, err["type"].endswith("_type")
        raise error from None
    _check_combinations(config)


def budget_steps(config: FinetuneConfig) -> int:
    """Optimiser steps of the budget (the cosine schedule spans them)."""
    if config.steps is not None:
        return config.steps
    if config.epochs is not None:
        steps = max(1, math.ceil(config.epochs * config.data_size / config.batch_size))
        if config.min_steps is not None:
            steps = max(steps, config.min_steps)
        if config.max_steps is not None:
            steps = min(steps, config.max_steps)
        return steps
    return DEFAULT_STEPS
