"""``ftscale pretrain``: pretrain the model family (or a custom recipe) with checkpoints.

``ftscale pretrain --family default --out DIR`` rebuilds the shipped family (same recipe, same
losses). A JSON ``--config`` file overrides recipe keys (see ``ftscale.models.DEFAULT_RECIPE``);
flags override the file.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the model family with intermediate checkpoints",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument(
        "--out", required=True, help="output folder (resumes if it holds an unfinished run)"
    )
    p.add_argument(
        "--family",
        default="default",
        choices=["default"],
        help="base recipe (default: %(default)s)",
    )
    p.add_argument("--config", help="JSON file of recipe overrides")
    p.add_argument("--members", help="comma-separated members to train (default: all)")
    p.add_argument("--tokens", type=int, help="training tokens per member")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--seed", type=int, help="seed of initialisation and batch order")
    p.add_argument(
        "--corpus",
        help='JSON file {"train": {stream: [docs]}, "heldout": {...}} '
        "(default: the embedded pretraining text)",
    )
    p.add_argument("--tokenizer", help="tokenizer folder to use (default: train one on the corpus)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="single-threaded worker processes (default: %(default)s)",
    )
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: %(default)s)")
    p.add_argument(
        "--keep-state",
        action="store_true",
        help="keep resume state (optimizer moments) and token caches after the run",
    )
    p.add_argument("--json", action="store_true", help="print family.json as one JSON object")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.devices import check_device
    from ftscale.errors import UserError
    from ftscale.fsutil import read_user_json
    from ftscale.models.pretrain import pretrain_family

    check_device(args.device)  # before any work (a typo used to fail after the first member)

    overrides: dict = {}
    if args.config:
        overrides = read_user_json(args.config, "config")
        if not isinstance(overrides, dict):
            raise UserError("config must be a JSON object of recipe keys", path=args.config)
    for key in ("tokens", "lr", "seed"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.workers < 1:
        raise UserError("--workers must be >= 1")
    only = [m.strip() for m in args.members.split(",") if m.strip()] if args.members else None
    tokenizer = None
    if args.tokenizer:
        from transformers import PreTrainedTokenizerFast

        try:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(args.tokenizer)
        except Exception as exc:  # noqa: BLE001 - any failure means "not a tokenizer folder"
            raise UserError(
                f"not a tokenizer folder: {' '.join(str(exc).split())[:200]}", path=args.tokenizer
            ) from None
    family = pretrain_family(
        args.out,
        overrides,
        corpus=args.corpus,
        tokenizer=tokenizer,
        only=only,
        workers=args.workers,
        device=args.device,
        keep_state=args.keep_state,
    )
    if args.json:
        print_json(family)
    else:
        for m in family["members"]:
            losses = " ".join(f"{k}={v:.3f}" for k, v in m["heldout_loss"].items())
            print(
                f"{m['name']:<16} tokens={m['pretrain_tokens']:>9} {m['tokens_per_second']:>7.0f} tok/s  {losses}"
            )
        print(f"wrote {args.out}")
    return 0
