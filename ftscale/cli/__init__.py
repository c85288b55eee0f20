"""The ``ftscale`` command line: a thin layer over the Python API.

Each command is one module ``ftscale.cli.<name>`` with ``register(subparsers)``; it adds its
parser and sets ``func(args) -> int | None``. Registration imports only argparse-level code:
heavy libraries (torch, transformers, ray, matplotlib) are imported inside ``func`` so that
``ftscale --help`` and ``ftscale fit`` stay fast.

Errors: a :class:`ftscale.errors.UserError` becomes ``ftscale: error: <one line>`` on stderr and
exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ftscale import __version__
from ftscale.errors import UserError

#: Command modules, in pipeline order. A module not written yet is skipped.
COMMANDS: tuple[str, ...] = (
    "data",
    "models",
    "pretrain",
    "finetune",
    "study",
    "demo",
    "fit",
    "critical",
    "recommend",
    "select",
    "report",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ftscale",
        description="Finetuning scaling studies: sweeps, joint scaling laws, method choice.",
    )
    parser.add_argument("--version", action="version", version=f"ftscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        modname = f"{__name__}.{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    import os

    # The command line prints its own progress; transformers' per-load bars are noise here.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2 if args.command is None else 0
    try:
        rc = args.func(args)
    except UserError as exc:
        msg = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"ftscale: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ftscale: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)
