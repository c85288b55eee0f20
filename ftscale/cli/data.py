"""``ftscale data``: list, show, export and build the embedded corpora and tasks.

TASK is an embedded task name, or a path to the user's data when ``--source-field`` and
``--target-field`` are given (JSONL, CSV/TSV, Parquet, or a datasets save_to_disk folder).
"""

from __future__ import annotations

import argparse
import json
import sys

from ftscale.cli._common import print_json
from ftscale.errors import UserError


def _task(args: argparse.Namespace):
    from ftscale.data import get_task, load_user_task

    if args.source_field or args.target_field:
        if not (args.source_field and args.target_field):
            raise UserError("user data needs both --source-field and --target-field")
        return load_user_task(
            args.task,
            args.source_field,
            args.target_field,
            args.kind,
            lang=args.data_lang,
            lang_field=args.lang_field,
        )
    return get_task(args.task)


def _examples(args: argparse.Namespace):
    task = _task(args)
    examples = task.split(args.split)
    if args.lang is not None:
        if args.lang not in task.languages:
            raise UserError(
                f"unknown language {args.lang!r} for task {task.name}; "
                f"its languages: {', '.join(task.languages)}"
            )
        examples = [e for e in examples if e.lang == args.lang]
        if not examples:
            raise UserError(f"task {task.name}: no {args.split} examples in {args.lang!r}")
    return task, examples


def _cmd_list(args: argparse.Namespace) -> int:
    from ftscale.data import get_task, list_tasks

    rows = []
    for name in list_tasks():
        t = get_task(name)
        rows.append(
            {
                "name": t.name,
                "kind": t.kind,
                "languages": list(t.languages),
                "splits": t.counts(),
            }
        )
    if args.json:
        print_json({"tasks": rows})
    else:
        for r in rows:
            s = r["splits"]
            print(
                f"{r['name']:<18} {r['kind']:<9} {','.join(r['languages']):<12} "
                f"train={s['train']:>6} dev={s['dev']:>5} test={s['test']:>5}"
            )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    if args.n < 0:
        raise UserError(f"-n must be >= 0, got {args.n}")
    task, examples = _examples(args)
    shown = examples[: args.n]
    if args.json:
        print_json(
            {
                "task": task.name,
                "split": args.split,
                "examples": [
                    {
                        "prompt": task.prompt(e),
                        "source": e.source,
                        "target": e.target,
                        "lang": e.lang,
                    }
                    for e in shown
                ],
            }
        )
        return 0
    for i, e in enumerate(shown):
        print(f"--- {task.name} {args.split} #{i} [{e.lang}]")
        print(task.prompt(e) + e.target)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format != "jsonl":
        raise UserError(f"unknown export format {args.format!r}; only jsonl is supported")
    _, examples = _examples(args)
    out = sys.stdout
    for e in examples:
        out.write(
            json.dumps({"source": e.source, "target": e.target, "lang": e.lang}, ensure_ascii=False)
            + "\n"
        )
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ftscale.data.builder.run import CORPORA_DIR, DEFAULT_CACHE, build

    out = Path(args.out) if args.out else CORPORA_DIR
    cache = Path(args.cache) if args.cache else DEFAULT_CACHE
    manifest = build(
        out, cache, update_index=not args.no_update, log=lambda m: print(m, file=sys.stderr)
    )
    total = sum(f["bytes"] for f in manifest["files"].values())
    if args.json:
        print_json({"out": str(out), "bytes": total, "files": manifest["files"]})
    else:
        print(f"wrote {out} ({total / 1e6:.1f} MB in {len(manifest['files'])} files)")
    return 0


def _add_task_args(p: argparse.ArgumentParser, split_default: str | None) -> None:
    p.add_argument("task", metavar="TASK", help="task name, or a data path with --source-field")
    if split_default is None:
        p.add_argument("--split", required=True, choices=("train", "dev", "test"))
    else:
        p.add_argument("--split", default=split_default, choices=("train", "dev", "test"))
    p.add_argument("--lang", help="only examples whose target is in this language")
    g = p.add_argument_group("user data")
    g.add_argument("--source-field", help="field holding the source text")
    g.add_argument("--target-field", help="field holding the target text")
    g.add_argument("--kind", default="translate", choices=("translate", "summarize"))
    g.add_argument("--data-lang", help="target language of every row")
    g.add_argument("--lang-field", help="field holding each row's target language")


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="list, show, export and build corpora and tasks")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(p))
    p.set_defaults(func=lambda a: p.print_help() or 2)

    ls = sub.add_parser("list", help="the embedded tasks with their split sizes")
    ls.add_argument("--json", action="store_true", help="print one JSON object")
    ls.set_defaults(func=_cmd_list)

    show = sub.add_parser("show", help="print examples of a task")
    _add_task_args(show, "train")
    show.add_argument("-n", type=int, default=5, help="number of examples (default 5)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(func=_cmd_show)

    exp = sub.add_parser("export", help="write a split to stdout, one JSON object per line")
    _add_task_args(exp, None)
    exp.add_argument("--format", default="jsonl", help="output format (jsonl)")
    exp.set_defaults(func=_cmd_export)

    b = sub.add_parser("build", help="rebuild the corpora from Debian/PyPI sources (network)")
    b.add_argument("--out", help="output folder (default: the package's corpora folder)")
    b.add_argument("--cache", help="download cache (default: .cache/ftscale-data)")
    b.add_argument("--no-update", action="store_true", help="skip apt-get update")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_cmd_build)
