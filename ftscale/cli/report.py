"""``ftscale report STUDY --out DIR``: the study's figures, tables and findings."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a study's report (report.md, report.html, PNGs)")
    p.add_argument("study", help="study file (TOML)")
    p.add_argument(
        "--store",
        help="run store: PATH, sqlite:///PATH, postgresql://... (default: beside the study file)",
    )
    p.add_argument("--out", required=True, help="report folder to write")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.report.build import build_report
    from ftscale.study.runner import default_store_path
    from ftscale.study.spec import load_study
    from ftscale.study.storage import open_store

    study = load_study(args.study)
    store = args.store if args.store else str(default_store_path(study))
    with open_store(store, must_exist=True) as store:
        folder = build_report(study, store, args.out)
    files = sorted(p.name for p in folder.iterdir())
    if args.json:
        print_json({"study": study.name, "out": str(folder), "files": files})
    else:
        print(f"report: {folder / 'report.html'} ({len(files)} files)")
    return 0
