"""``ftscale finetune``: one finetuning run, printed as a record (one JSON object with --json)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
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
    p.add_argument("--seed", type=int, default=0, help="seed of the data subset and the run")
    for field, meaning in pet_size_fields().items():
        defaults = ", ".join(
            f"{m.default_pet_size} for {n}" for n, m in METHODS.items() if m.pet_size_field == field
        )
        p.add_argument(
            "--" + field.replace("_", "-"), type=int, default=None, help=f"{meaning} ({defaults})"
        )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, help="optimiser steps (default 200)")
    budget.add_argument("--epochs", type=float, default=None, help="passes over the data")
    p.add_argument("--min-steps", type=int, default=None, help="clamp an epoch budget from below")
    p.add_argument("--max-steps", type=int, default=None, help="clamp an epoch budget from above")
    p.add_argument("--batch-size", type=int, default=16, help="examples per step")
    p.add_argument("--max-length", type=int, default=256, help="tokens per example")
    p.add_argument(
        "--lr",
        default=None,
        help="learning rate, comma-separated candidate rates chosen on dev (1e-3,3e-3,1e-2), "
        "or 'auto' (the method's default x 1/3, 1, 3); default: the method's rate",
    )
    p.add_argument(
        "--lr-search",
        default="halving",
        choices=["halving", "grid"],
        help="several rates: stop the worse ones early (halving) or train each to its end",
    )
    p.add_argument(
        "--schedule",
        default="cosine",
        choices=["cosine", "wsd"],
        help="cosine, or warmup-stable-decay whose decay starts when dev loss stops improving",
    )
    p.add_argument(
        "--decay", type=float, default=0.2, help="wsd: fraction of the budget the decay lasts"
    )
    p.add_argument("--optimizer", default="adamw", help="adamw | adafactor")
    p.add_argument("--eval-every", type=int, default=20, help="steps between dev evaluations")
    p.add_argument("--patience", type=int, default=3, help="evaluations without improvement")
    p.add_argument(
        "--forget-examples",
        type=int,
        default=16,
        help="windows of general text (max-length tokens each) scored before and after "
        "finetuning, for forgetting (0: off)",
    )
    p.add_argument(
        "--forget-text",
        default=None,
        help="a UTF-8 text file to measure forgetting on (default: the embedded held-out text)",
    )
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA)")
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "bf16", "fp32"],
        help="bf16 autocast or fp32 (auto: bf16 on CUDA, fp32 on CPU)",
    )
    p.add_argument(
        "--report-to",
        nargs="+",
        default=[],
        choices=["tensorboard", "mlflow"],
        help="log the run's losses, config and record to these trackers (offline, local)",
    )
    p.add_argument("--report-dir", help="the trackers' folder (default runs/trackers)")
    from ftscale.cli._task_args import add_task_source_args

    add_task_source_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._task_args import task_source_options
    from ftscale.data.user import task_ref
    from ftscale.finetune import FinetuneConfig, run_finetune, validate
    from ftscale.finetune.config import parse_lr
    from ftscale.finetune.methods import pet_size_fields

    task, source = task_ref(args.task, task_source_options(args))
    config = FinetuneConfig(
        model=args.model,
        task=task,
        task_source=source,
        method=args.method,
        data_size=args.data_size,
        seed=args.seed,
        **{field: getattr(args, field) for field in pet_size_fields()},
        steps=args.steps,
        epochs=args.epochs,
        min_steps=args.min_steps,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        max_length=args.max_length,
        lr=None if args.lr is None else parse_lr(args.lr),
        lr_search=args.lr_search,
        schedule=args.schedule,
        decay=args.decay,
        optimizer=args.optimizer,
        eval_every=args.eval_every,
        patience=args.patience,
        forget_examples=args.forget_examples,
        forget_text=args.forget_text,
        device=args.device,
        compile=args.compile,
        precision=args.precision,
        report_to=args.report_to,
        report_dir=args.report_dir,
    )
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
