"""``ftscale models list|info``: the family, its checkpoints, and any local model."""

from __future__ import annotations

import argparse

from ftscale.textfmt import fmt_count

FIELDS = ("name", "path", "family", "model_size", "model_size_nonembed", "pretrain_tokens")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list and describe base models")
    sub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND", parser_class=type(p))
    p_list = sub.add_parser("list", help="the family members and their intermediate checkpoints")
    p_list.add_argument("--json", action="store_true", help="print one JSON object")
    p_list.set_defaults(func=_list)
    p_info = sub.add_parser("info", help="describe a model by name or path (folder, .gguf)")
    p_info.add_argument("model", metavar="NAME_OR_PATH")
    p_info.add_argument("--json", action="store_true", help="print one JSON object")
    p_info.set_defaults(func=_info)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _row(info) -> dict:
    return {k: getattr(info, k) for k in FIELDS}


def _list(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.models import list_models

    models = list_models()
    if args.json:
        print_json({"models": [_row(m) for m in models]})
        return 0
    print(
        f"{'name':<16} {'family':<8} {'model_size':>12} {'nonembed':>11} {'pretrain_tokens':>16}  path"
    )
    for m in models:
        print(
            f"{m.name:<16} {m.family or '-':<8} {fmt_count(m.model_size):>12} "
            f"{fmt_count(m.model_size_nonembed):>11} {fmt_count(m.pretrain_tokens):>16}  {m.path}"
        )
    return 0


def _info(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.models import model_info

    info = model_info(args.model)
    if args.json:
        print_json({**_row(info), "details": info.details})
        return 0
    for k in FIELDS:
        v = getattr(info, k)
        print(f"{k:<20} {fmt_count(v) if isinstance(v, int) else (v if v is not None else '-')}")
    for k, v in info.details.items():
        if isinstance(v, dict):
            v = " ".join(
                f"{kk}={vv:.4g}" if isinstance(vv, float) else f"{kk}={vv}" for kk, vv in v.items()
            )
        print(f"{k:<20} {v}")
    return 0
