"""The command-line options of a task given as a data file (``--format``, ``--field``, ...),
shared by ``ftscale finetune`` and ``ftscale data``."""

from __future__ import annotations

import argparse
from typing import Any

from ftscale.errors import UserError


def add_task_source_args(p: argparse.ArgumentParser, format_flag: str = "--format") -> None:
    """Options describing a user task file (``ftscale.data.user.TaskSource``); ``format_flag``
    names the data-shape option where ``--format`` means something else (``data export``)."""
    from ftscale.data.formats import FORMATS
    from ftscale.data.user import METRICS

    g = p.add_argument_group("a task from a data file (TASK is a path)")
    g.add_argument(
        format_flag,
        dest="data_format",
        choices=FORMATS,
        help="the data's shape (default: detected from the fields)",
    )
    g.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="ROLE=NAME",
        help="rename a field of the format, e.g. --field instruction=question (repeatable)",
    )
    g.add_argument(
        "--dataset", help="the entry of TASK when TASK is a LLaMA-Factory dataset_info.json"
    )
    g.add_argument(
        "--template",
        help="auto (the model's chat template for conversations, else neutral), chat, plain, "
        "or a template string with {prompt}",
    )
    g.add_argument("--dev", dest="dev_file", help="dev data file (default: carved from TASK)")
    g.add_argument("--test", dest="test_file", help="test data file (default: carved from TASK)")
    g.add_argument("--dev-size", type=int, help="dev examples carved from TASK")
    g.add_argument("--test-size", type=int, help="test examples carved from TASK")
    g.add_argument("--metric", help=f"generation metrics, comma-separated ({', '.join(METRICS)})")
    g.add_argument("--data-lang", help="language of the responses (for BLEU's tokenizer)")


def task_source_options(args: argparse.Namespace) -> dict[str, Any]:
    """The task-source options given on the command line (None where not given)."""
    fields = {}
    for item in getattr(args, "field", []) or []:
        role, sep, name = item.partition("=")
        if not sep or not role or not name:
            raise UserError(f"--field expects ROLE=NAME, got {item!r}")
        fields[role] = name
    metric = getattr(args, "metric", None)
    return {
        "dataset": getattr(args, "dataset", None),
        "format": getattr(args, "data_format", None),
        "fields": fields or None,
        "template": getattr(args, "template", None),
        "dev": getattr(args, "dev_file", None),
        "test": getattr(args, "test_file", None),
        "dev_size": getattr(args, "dev_size", None),
        "test_size": getattr(args, "test_size", None),
        "metric": metric.split(",") if metric else None,
        "lang": getattr(args, "data_lang", None),
    }
