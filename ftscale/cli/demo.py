"""``ftscale demo [--out DIR]``: the paper in miniature (what ``make demo`` runs).

Runs the demo study (translate-en-de, the project's own ftlm family, FMT / LoRA / prompt tuning
over several finetuning data sizes and seeds) into DIR/study.db, fits the multiplicative and
additive laws per method with the largest model and data size held out, writes DIR/report/, and
prints the fitted parameters, Delta_e / Delta_h, the critical data sizes between methods at each
model size and a recommendation. A second call reads everything from the store.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the paper in miniature: run, fit and report the demo study",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder (runs/demo)")
    p.add_argument("--study", help=argparse.SUPPRESS)  # another study file, for tests
    p.add_argument("--workers", type=int, help="runs in parallel (default: one per core)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.demo import format_demo, run_demo
    from ftscale.errors import UserError

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    from pathlib import Path

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("--out names a file; the demo needs a folder", path=args.out)
    blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise UserError("a file stands where --out needs a folder", path=str(blocker))
    result = run_demo(args.out, study_path=args.study, workers=args.workers, progress=not args.json)
    if args.json:
        print_json(result)
    else:
        print(format_demo(result))
    return 0
