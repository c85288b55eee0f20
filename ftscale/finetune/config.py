"""The configuration of one finetuning run, and its validation (bad values -> UserError)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Any

from ftscale.errors import UserError
from ftscale.finetune.methods import pet_size_fields

#: Learning rates outside (0, MAX_LR] are refused: above 1 every optimiser here diverges at once.
MAX_LR = 1.0
#: ``lr = "auto"``: the method's default rate times each of these (a half-decade either side).
AUTO_LR_FACTORS = (1 / 3, 1.0, 3.0)
#: A model ftscale did not pretrain (``lr`` None or ``"auto"``): the method's
#: ``pretrained_lr`` times each of these, a 100x span searched on dev. The family's rates
#: (tuned on models 100-500x smaller) are never applied to such a model unless pinned.
PRETRAINED_LR_FACTORS = (0.1, 1 / 3, 1.0, 3.0, 10.0)
#: More candidate rates than this in one run is a typo, not a search.
MAX_LR_CANDIDATES = 16
LR_SEARCHES = ("halving", "grid")
#: Learning-rate schedules (``ftscale.finetune.optim.Schedule``).
SCHEDULES = ("cosine", "wsd")


@dataclass
class _RunSettings:
    """One run. Sizes in examples/tokens/steps; ``lr`` None means the method's measured default.

    Budget: ``steps`` optimiser steps, or ``epochs`` passes over the ``data_size`` examples
    (fractional allowed), optionally clamped to [``min_steps``, ``max_steps``] (so tiny subsets
    still get enough steps to reach their best dev loss and huge ones a bounded cost); neither
    given means ``DEFAULT_STEPS``. Early stopping ends a run after
    ``patience`` dev evaluations (every ``eval_every`` steps) without a new best dev loss; with
    ``schedule = "wsd"`` and ``decay_on_plateau`` that plateau starts the decay instead, and the
    run ends when the decay does (``ftscale.finetune.optim``).
    ``lr``: one rate, a list of candidate rates, or ``"auto"`` (:data:`AUTO_LR_FACTORS` times
    the method's default); for a model ftscale did not pretrain, None and ``"auto"`` both mean
    a search over :data:`PRETRAINED_LR_FACTORS` times the method's ``pretrained_lr``
    (:func:`lr_policy`); with several, the run trains each on the same batches, keeps the
    one with the best dev loss (``lr_search``: ``"halving"`` stops the worse rates early,
    ``"grid"`` trains every one to its end; ``ftscale.finetune.search``) and reports the test
    loss at its best-dev checkpoint.
    Evaluation uses fixed samples, the first ``dev_examples`` of dev and ``test_examples`` of test;
    greedy decoding for BLEU/chrF/ROUGE-L uses the first ``decode_examples`` test examples.
    The PET-size fields (``rank``, ``prompt_length``, ...) are those the registered methods
    name (:func:`ftscale.finetune.methods.pet_size_fields`); None means the method's default.
    """

    model: str
    task: str  # an embedded task's name, a data file, or the name of ``task_source``'s task
    method: str = "lora"
    data_size: int = 1000
    seed: int = 0
    steps: int | None = None
    epochs: float | None = None
    min_steps: int | None = None  # clamps an epoch budget from below (epochs only)
    max_steps: int | None = None  # clamps an epoch budget from above (epochs only)
    batch_size: int = 16  # examples per step
    max_length: int = 256  # tokens per example (prompt + target), longer ones are truncated
    lr: float | list[float] | str | None = None  # a rate, candidate rates, or "auto"
    lr_search: str = "halving"  # "halving" | "grid": how several candidate rates are compared
    schedule: str = "cosine"  # "cosine" | "wsd" (warmup-stable-decay)
    decay: float = 0.2  # wsd: fraction of the budget the decay lasts
    decay_on_plateau: bool = True  # wsd: a dev-loss plateau starts the decay (else: stop)
    optimizer: str = "adamw"  # "adamw" | "adafactor"
    weight_decay: float = 0.0
    warmup: float = 0.1  # fraction of the budget spent warming up linearly
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    grad_clip: float = 1.0  # max global grad norm (0: off)
    eval_every: int = 20  # steps between dev evaluations (0: only at the end)
    patience: int = 3  # dev evaluations without improvement before stopping (0: never stop early)
    dev_examples: int = 100
    test_examples: int = 200
    decode_examples: int = 50  # 0: no generation metrics
    max_new_tokens: int = 64
    zero_shot: bool = True  # also measure the base model's test loss before finetuning
    # The model before any step (step 0: the base model, or the method at its initialisation,
    # which for FMT, LoRA and IA3 is the base model) competes in the best-dev choice, so a run
    # whose training only hurt reports best_step 0 instead of a damaged checkpoint.
    base_candidate: bool = True
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N"
    threads: int | None = 1  # torch intra-op threads on CPU (1 was ~10x faster than 2 here)
    compile: bool = False  # torch.compile the decoder (CUDA)
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA, fp32 on CPU) | "bf16" | "fp32"
    # Transfer evaluation (ftscale.finetune.transfer): score the base and the finetuned model on
    # related tasks (same target language) with 0, 1, 5 demonstrations.
    transfer: bool = False
    transfer_tasks: list[str] | None = None  # None: every zero-shot set of the target language
    transfer_shots: list[int] = field(default_factory=lambda: [0, 1, 5])
    transfer_examples: int = 16  # items per related task for the loss
    transfer_decode: int = 8  # of those, items greedy-decoded for BLEU/chrF (0: none)
    # Forgetting (ftscale.finetune.forget): loss on a fixed sample of general text before and
    # after finetuning, ``forget_examples`` windows of ``max_length`` tokens (0: off).
    forget_examples: int = 16
    forget_text: str | None = None  # a UTF-8 text file; None: the embedded held-out text
    # A user task (ftscale.data.user.TaskSource as a dict: path, format, fields, template,
    # dev/test, metric, ...); None: ``task`` is an embedded name or a data path.
    task_source: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form, copied into the record
    # Trackers (ftscale.finetune.trackers): "tensorboard", "mlflow"; logs under report_dir.
    report_to: list[str] = field(default_factory=list)
    report_dir: str | None = None  # None: runs/trackers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The run configuration: the settings above plus one optional PET-size field per field name
#: the method registry declares (``rank``, ``prompt_length``).
FinetuneConfig = make_dataclass(
    "FinetuneConfig",
    [(name, int | None, field(default=None)) for name in pet_size_fields()],
    bases=(_RunSettings,),
    namespace={"__doc__": _RunSettings.__doc__, "__module__": __name__},
)

DEFAULT_STEPS = 200
#: Trackers ``report_to`` names (:mod:`ftscale.finetune.trackers`).
TRACKERS = ("tensorboard", "mlflow")
#: Fewest tokens per example that leave room for a prompt and a target.
MIN_LENGTH = 8

_INT_FIELDS = (
    "data_size",
    "seed",
    "steps",
    "batch_size",
    "max_length",
    "eval_every",
    "patience",
    "dev_examples",
    "test_examples",
    "decode_examples",
    "max_new_tokens",
    "transfer_examples",
    "transfer_decode",
    "forget_examples",
)
_FLOAT_FIELDS = ("epochs", "weight_decay", "warmup", "min_lr_ratio", "grad_clip", "decay")
_BOOL_FIELDS = ("zero_shot", "compile", "transfer", "decay_on_plateau", "base_candidate")
_STR_FIELDS = (
    "model",
    "task",
    "method",
    "optimizer",
    "device",
    "precision",
    "lr_search",
    "schedule",
)


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def lr_policy(config: FinetuneConfig) -> str:
    """How a run's rates are chosen (recorded as ``lr_policy``): ``"pinned"`` (one rate or a
    list given), ``"family-default"`` (the method's rate measured on the ftlm family),
    ``"auto"`` (a search around it) or ``"auto-pretrained"`` (a model ftscale did not pretrain,
    ``lr`` None or "auto": :data:`PRETRAINED_LR_FACTORS` times the method's ``pretrained_lr``,
    searched on dev)."""
    if config.lr is not None and not isinstance(config.lr, str):
        return "pinned"
    from ftscale.models.registry import is_pretrained_elsewhere

    if is_pretrained_elsewhere(config.model):
        return "auto-pretrained"
    return "auto" if config.lr == "auto" else "family-default"


def _rounded(rate: float) -> float:
    return float(f"{rate:.3g}")


def lr_candidates(config: FinetuneConfig) -> list[float]:
    """The learning rates a run trains (ascending, no repeats, capped at :data:`MAX_LR`), by
    :func:`lr_policy`: ``[lr]`` or the list given; the method's default rate; that times
    :data:`AUTO_LR_FACTORS` for "auto"; for a model ftscale did not pretrain, its
    ``pretrained_lr`` times :data:`PRETRAINED_LR_FACTORS`."""
    from ftscale.finetune.methods import METHODS

    method = METHODS[config.method]
    default = method.default_lr
    lr = config.lr
    policy = lr_policy(config)
    if policy == "auto-pretrained":
        centre = method.pretrained_lr or default / 30
        return sorted({_rounded(min(MAX_LR, centre * f)) for f in PRETRAINED_LR_FACTORS})
    if lr is None:
        return [float(default)]
    if isinstance(lr, str):
        return sorted({min(MAX_LR, float(default) * f) for f in AUTO_LR_FACTORS})
    if isinstance(lr, list | tuple):
        return sorted({float(v) for v in lr})
    return [float(lr)]


def parse_lr(text: str) -> float | list[float] | str:
    """``--lr`` as typed: ``auto``, one rate (``1e-3``) or comma-separated rates
    (``1e-3,3e-3,1e-2``); UserError for anything else."""
    text = text.strip()
    if text.lower() == "auto":
        return "auto"
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(
            f"--lr must be a rate, comma-separated rates or 'auto', got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def _check_lr(lr: Any) -> None:
    if lr is None:
        return
    if isinstance(lr, str):
        if lr != "auto":
            raise UserError(
                f"learning rate must be a number, a list of numbers or 'auto', got {lr!r}"
            )
        return
    values = list(lr) if isinstance(lr, list | tuple) else [lr]
    if isinstance(lr, list | tuple) and not 1 <= len(values) <= MAX_LR_CANDIDATES:
        raise UserError(
            f"a list of learning rates needs 1 to {MAX_LR_CANDIDATES} rates, got {len(values)}"
        )
    for v in values:
        if not _is_number(v):
            raise UserError(f"learning rate must be a finite number, got {v!r}")
        if not 0 < v <= MAX_LR:
            raise UserError(f"learning rate must lie in (0, {MAX_LR}], got {v}")


def _check_types(config: FinetuneConfig) -> None:
    """Each setting of the type its field says (``steps = 4.5`` or ``zero_shot = "no"`` are
    errors, not silently truncated or truthy); None where the field allows it."""
    for name in (*_INT_FIELDS, *pet_size_fields()):
        v = getattr(config, name)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise UserError(f"{name.replace('_', ' ')} must be an integer, got {v!r}")
    for name in _FLOAT_FIELDS:
        v = getattr(config, name)
        if v is None:
            continue
        if not _is_number(v):
            raise UserError(f"{name.replace('_', ' ')} must be a finite number, got {v!r}")
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(config, name), bool):
            raise UserError(f"{name.replace('_', ' ')} must be true or false")
    for name in _STR_FIELDS:
        if not isinstance(getattr(config, name), str):
            raise UserError(f"{name.replace('_', ' ')} must be a string")
    if not isinstance(config.report_to, list | tuple) or not all(
        isinstance(t, str) for t in config.report_to
    ):
        raise UserError(f"report_to must be a list of tracker names, got {config.report_to!r}")
    if config.report_dir is not None and not isinstance(config.report_dir, str):
        raise UserError("report dir must be a path (a string)")
    if config.forget_text is not None and not isinstance(config.forget_text, str):
        raise UserError("forget text must be a path (a string)")
    if config.task_source is not None:
        from ftscale.data.user import make_source

        if not isinstance(config.task_source, dict):
            raise UserError("task source must be a table (path, format, fields, ...)")
        make_source(config.task_source)
    if config.threads is not None and (
        isinstance(config.threads, bool)
        or not isinstance(config.threads, int)
        or config.threads < 1
    ):
        raise UserError(f"threads must be a positive integer, got {config.threads!r}")


def validate(config: FinetuneConfig) -> None:
    """Raise UserError for any value that cannot give a meaningful run (before loading anything)."""
    from ftscale.finetune.methods import METHODS

    if config.method not in METHODS:
        raise UserError(f"unknown method {config.method!r} (known: {', '.join(sorted(METHODS))})")
    method = METHODS[config.method]
    _check_types(config)
    if not 0 <= config.seed < 2**32:
        raise UserError(f"seed must be an integer in [0, 2^32), got {config.seed}")
    for name in pet_size_fields():
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise UserError(f"{name.replace('_', ' ')} must be a positive integer, got {value}")
        if value is not None and method.pet_size_field != name:
            raise UserError(
                f"--{name.replace('_', '-')} does not apply to method {config.method!r}"
            )
    positive = {
        "data size": config.data_size,
        "batch size": config.batch_size,
        "max length": config.max_length,
        "max new tokens": config.max_new_tokens,
    }
    for name, value in positive.items():
        if value is None or value <= 0:
            raise UserError(f"{name} must be positive, got {value}")
    if config.steps is not None and config.epochs is not None:
        raise UserError("give a budget in steps or in epochs, not both")
    if config.steps is not None and config.steps <= 0:
        raise UserError(f"steps must be positive, got {config.steps}")
    if config.epochs is not None and not (config.epochs > 0 and math.isfinite(config.epochs)):
        raise UserError(f"epochs must be positive, got {config.epochs}")
    for name in ("min_steps", "max_steps"):
        value = getattr(config, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise UserError(f"{name.replace('_', ' ')} must be a positive integer, got {value!r}")
        if config.epochs is None:
            raise UserError(f"{name.replace('_', ' ')} clamps an epoch budget: give epochs too")
    if (
        config.min_steps is not None
        and config.max_steps is not None
        and config.min_steps > config.max_steps
    ):
        raise UserError(
            f"min steps ({config.min_steps}) cannot exceed max steps ({config.max_steps})"
        )
    _check_lr(config.lr)
    bad = [t for t in config.report_to if t not in TRACKERS]
    if bad:
        raise UserError(f"unknown tracker {bad[0]!r} in report_to (known: {', '.join(TRACKERS)})")
    if config.lr_search not in LR_SEARCHES:
        raise UserError(f"unknown lr search {config.lr_search!r} (known: {', '.join(LR_SEARCHES)})")
    if config.schedule not in SCHEDULES:
        raise UserError(f"unknown schedule {config.schedule!r} (known: {', '.join(SCHEDULES)})")
    if not 0 < config.decay <= 1:
        raise UserError(f"decay fraction must lie in (0, 1], got {config.decay}")
    if config.optimizer not in ("adamw", "adafactor"):
        raise UserError(f"unknown optimizer {config.optimizer!r} (known: adamw, adafactor)")
    if not (0 <= config.warmup < 1):
        raise UserError(f"warm-up fraction must lie in [0, 1), got {config.warmup}")
    if not (0 <= config.min_lr_ratio <= 1):
        raise UserError(f"min lr ratio must lie in [0, 1], got {config.min_lr_ratio}")
    if not (0 <= config.weight_decay < 1):
        raise UserError(f"weight decay must lie in [0, 1), got {config.weight_decay}")
    if not (0 <= config.grad_clip < math.inf):
        raise UserError(f"grad clip must be a finite number >= 0 (0: off), got {config.grad_clip}")
    if config.max_length < MIN_LENGTH:
        raise UserError(
            f"max length must be at least {MIN_LENGTH} tokens (a prompt and a target), got "
            f"{config.max_length}"
        )
    for name in (
        "eval_every",
        "patience",
        "dev_examples",
        "test_examples",
        "decode_examples",
        "forget_examples",
    ):
        if getattr(config, name) < 0:
            raise UserError(f"{name.replace('_', ' ')} must not be negative")
    if config.dev_examples == 0 or config.test_examples == 0:
        raise UserError("dev and test samples need at least one example")
    if config.forget_text is not None and config.forget_examples:
        from ftscale.finetune.forget import read_forget_text

        read_forget_text(config.forget_text)  # unreadable or empty: UserError before any model
    if config.transfer:
        shots = list(config.transfer_shots)
        if not shots or any(not isinstance(k, int) or k < 0 for k in shots):
            raise UserError(f"transfer shots must be non-negative integers, got {shots}")
        if config.transfer_examples <= 0 or config.transfer_decode < 0:
            raise UserError("transfer examples must be positive (decode examples non-negative)")
        if config.transfer_decode > config.transfer_examples:
            raise UserError("transfer decode examples cannot exceed transfer examples")
    if config.precision not in ("auto", "bf16", "fp32"):
        raise UserError(f"unknown precision {config.precision!r} (known: auto, bf16, fp32)")
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]+)?", config.device):
        raise UserError(f"unknown device {config.device!r} (cpu, cuda, cuda:N or mps)")


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
