"""``ftscale finetune``: one finetuning run, printed as a record (one JSON object with --json)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    from ftscale.finetune.config import DEFAULT_STEPS
    from ftscale.finetune.methods import METHODS, pet_size_fields

    names = list(METHODS)
    p = subparsers.add_parser(
        "finetune",
        help=f"run one finetuning run ({', '.join(names[:-1])} or {names[-1]}) and print its record",
        description="Finetune MODEL on TASK with one method and print the run's record: test "
        "and dev loss of the target (nats/token) at the best-dev checkpoint, zero-shot loss, "
        "BLEU/chrF or ROUGE-L on a fixed test sample, and the run's cost.",
    )
    p.add_argument("--model", required=True, help="family model name or checkpoint path")
    p.add_argument("--method", required=True, help=" | ".join(names))
    p.add_argument(
        "--task",
        required=True,
        help="embedded task name (see `ftscale data list`), or a data file/folder of your own "
        "(JSON, JSONL, CSV/TSV, Parquet, datasets folder; alpaca, chat, ShareGPT, "
        "prompt/completion, source/target or text)",
    )
    p.add_argument("--data-size", type=int, required=True, help="finetuning examples")
    _option(p, "seed", "seed of the data subset and the run")
    for field, meaning in pet_size_fields().items():
        defaults = ", ".join(
            f"{m.default_pet_size} for {n}" for n, m in METHODS.items() if m.pet_size_field == field
        )
        _option(p, field, f"{meaning} ({defaults})")
    budget = p.add_mutually_exclusive_group()
    _option(budget, "steps", f"optimiser steps (default {DEFAULT_STEPS})")
    _option(budget, "epochs", "passes over the data")
    _option(p, "min_steps", "clamp an epoch budget from below")
    _option(p, "max_steps", "clamp an epoch budget from above")
    _option(p, "batch_size", "examples per step")
    _option(p, "max_length", "tokens per example")
    p.add_argument(
        "--lr",
        default=None,
        help="learning rate, comma-separated candidate rates chosen on dev (1e-3,3e-3,1e-2), "
        "or 'auto' (the method's default x 1/3, 1, 3); default: the method's rate",
    )
    _option(
        p,
        "lr_search",
        "several rates: stop the worse ones early (halving) or train each to its end",
    )
    _option(
        p,
        "schedule",
        "cosine, or warmup-stable-decay whose decay starts when dev loss stops improving",
    )
    _option(p, "decay", "wsd: fraction of the budget the decay lasts")
    _option(p, "optimizer", "adamw | adafactor", choices=None)  # checked by validate()
    _option(p, "eval_every", "steps between dev evaluations")
    _option(p, "patience", "evaluations without improvement")
    _option(
        p,
        "forget_examples",
        "windows of general text (max-length tokens each) scored before and after "
        "finetuning, for forgetting (0: off)",
    )
    _option(
        p,
        "forget_text",
        "a UTF-8 text file to measure forgetting on (default: the embedded held-out text)",
    )
    _option(p, "device", "cpu | cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    _option(p, "precision", "bf16 autocast or fp32 (auto: bf16 on CUDA, fp32 on CPU)")
    _option(
        p,
        "report_to",
        "log the run's losses, config and record to these trackers (offline, local)",
        nargs="+",
    )
    _option(p, "report_dir", "the trackers' folder (default runs/trackers)")
    from ftscale.cli._task_args import add_task_source_args

    add_task_source_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _option(p: Any, name: str, help: str | None, **kw: Any) -> None:
    """``--NAME`` for the run-config field ``name``: its type, default and choices are the
    field's (:class:`ftscale.finetune.config.FinetuneConfig`), written nowhere else."""
    import types
    import typing

    from ftscale.finetune.config import FinetuneConfig

    hint = typing.get_type_hints(FinetuneConfig)[name]
    f = next(f for f in dataclasses.fields(FinetuneConfig) if f.name == name)
    default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is list else hint
    if typing.get_origin(base) is typing.Literal:
        kw.setdefault("choices", list(typing.get_args(base)))
    elif base in (int, float):
        kw["type"] = base
    p.add_argument("--" + name.replace("_", "-"), default=default, help=help, **kw)


def _run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._task_args import task_source_options
    from ftscale.data.user import task_ref
    from ftscale.finetune import FinetuneConfig, run_finetune, validate
    from ftscale.finetune.rates import parse_lr

    task, source = task_ref(args.task, task_source_options(args))
    # every option whose name is a run-config field is that field (see _option)
    names = {f.name for f in dataclasses.fields(FinetuneConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    lr = None if args.lr is None else parse_lr(args.lr)
    config = FinetuneConfig(**{**given, "task": task, "task_source": source, "lr": lr})
    validate(config)  # before torch is imported: a typo costs no start-up time
    record = run_finetune(config)
    if args.json:
        print_json(record)
        return 0
    keys = [
        "task",
        "method",
        "model",
        "pet_size",
        "data_size",
        "seed",
        "status",
        "loss",
        "dev_loss",
        "zero_shot_loss",
        "forget_loss_before",
        "forget_loss",
        "forgetting",
        "bleu",
        "chrf",
        "rougeL",
        "exact_match",
        "template",
        "truncated",
        "lr",
        "steps",
        "best_step",
        "diverged_step",
        "trainable_params",
        "tokens_per_second",
        "train_seconds",
        "peak_mem_bytes",
    ]
    for k in keys:
        v = record.get(k)
        if v is None and k in (
            "bleu",
            "chrf",
            "rougeL",
            "exact_match",
            "pet_size",
            "diverged_step",
        ):
            continue
        print(f"{k:>18}: {round(v, 4) if isinstance(v, float) else v}")
    for t in record.get("lr_trials") or []:
        dev = "-" if t["best_dev"] is None else f"{t['best_dev']:.4f}"
        print(
            f"{'lr candidate':>18}: {t['lr']:.3g}  best dev {dev}  {t['steps']} steps ({t['stop']})"
        )
    return 0
