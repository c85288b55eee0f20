"""``ftscale study plan|run|status|export|fit|suggest|serve``: declarative sweeps over a durable run
store, and the adaptive design (``suggest``, ``run --adaptive``: :mod:`ftscale.cli.study_adaptive`)."""

from __future__ import annotations

import argparse
import sys

from ftscale.cli._study_common import (
    default_workers,
    executor_kwargs,
    load_args,
    open_study_store,
    shown_store,
)
from ftscale.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    from ftscale.cli.study_adaptive import suggest_command

    p = sub.add_parser("study", help="plan, run, inspect, export and fit a study (TOML file)")
    ssub = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("file", help="study file (TOML)")
        sp.add_argument(
            "--store",
            help="run store: PATH or sqlite:///PATH (SQLite, the default: beside the study file, "
            ".db), postgresql://USER@HOST:PORT/DB (runners on many machines), memory://NAME",
        )
        sp.add_argument("--json", action="store_true", help="print one JSON object")

    sp = ssub.add_parser("plan", help="list the study's runs and estimate their cost")
    common(sp)
    sp.add_argument(
        "--probe",
        action="store_true",
        help="time a few steps of each model x method not yet measured (runs torch)",
    )
    sp.add_argument("--probe-steps", type=int, default=6, help="steps per probe (default 6)")
    sp.set_defaults(func=_plan)

    sp = ssub.add_parser("run", help="run every unfinished run of the study")
    common(sp)
    sp.add_argument("--workers", type=int, help="runs in parallel (default: one per core)")
    sp.add_argument("--threads", type=int, default=1, help="intra-op threads per run (default 1)")
    sp.add_argument("--backend", default="local", help="local (default) or ray")
    sp.add_argument("--address", help="Ray cluster address (ray backend; default: start locally)")
    sp.add_argument(
        "--cpus-per-run", type=float, help="ray: CPUs each run asks for (default 1; may be < 1)"
    )
    sp.add_argument(
        "--gpus-per-run",
        type=float,
        help="ray: GPUs each run asks for (default 0; 0.25 packs four runs onto one GPU)",
    )
    sp.add_argument(
        "--resources",
        help="ray: custom resources each run asks for, as JSON ('{\"a100\": 1}'), to place runs",
    )
    sp.add_argument(
        "--ship-files",
        choices=["auto", "always", "never"],
        help="ray: send the run's local files (a task's data file, a checkpoint folder) to "
        "workers through Ray's object store: auto (default: where a worker does not see the "
        "path), always, never",
    )
    sp.add_argument("--retry-failed", action="store_true", help="run failed/diverged runs again")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.add_argument(
        "--adaptive",
        action="store_true",
        help="run rounds of `study suggest` (one run per worker each) instead of the whole grid",
    )
    sp.add_argument("--question", help="adaptive: what to sharpen (as for `study suggest`)")
    sp.add_argument(
        "--until",
        help="adaptive: stop when this holds ('p_best >= 0.95' for recommend, the default; "
        "'width <= 0.2' for critical, log10 examples)",
    )
    sp.add_argument(
        "--max-core-hours", type=float, help="adaptive: stop before spending more than this"
    )
    sp.set_defaults(func=_run)

    sp = ssub.add_parser(
        "suggest", help="the next runs that most sharpen the study's answer, per unit cost"
    )
    common(sp)
    sp.add_argument(
        "--question",
        help="'recommend at model=M data_size=D' (default: the largest model and the largest "
        "data size every method runs) or 'critical m1,m2 at model=M'",
    )
    sp.add_argument(
        "--budget-core-hours", type=float, help="only suggestions whose summed cost fits this"
    )
    sp.add_argument("-n", type=int, default=5, help="how many suggestions (default 5)")
    sp.set_defaults(func=suggest_command)

    sp = ssub.add_parser("status", help="runs by status, method and model")
    common(sp)
    sp.set_defaults(func=_status)

    sp = ssub.add_parser("export", help="write the long results table")
    common(sp)
    sp.add_argument(
        "--format",
        choices=["csv", "parquet", "jsonl"],
        help="table format (default: from --out's extension, else csv)",
    )
    sp.add_argument("--out", help="output file (default: stdout for csv/jsonl)")
    sp.set_defaults(func=_export)

    sp = ssub.add_parser("fit", help="fit the study's laws from the store")
    common(sp)
    sp.add_argument("--out", help="write the fits JSON here (usable by critical/recommend)")
    sp.set_defaults(func=_fit)

    from ftscale.cli.serve import register_serve

    register_serve(ssub)


def _plan(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import print_rows
    from ftscale.study.plan import plan_overview
    from ftscale.study.progress import Progress

    study, store_path = load_args(args)
    probes: list[Progress] = []

    def progress(i: int, n: int, key: tuple) -> None:
        if not probes:
            probes.append(Progress(n, desc="probe", unit="probe"))
        what = " ".join(map(str, key))
        probes[0].event(f"probe {i + 1}/{n}: {what}", n=i, postfix=what)

    try:
        out = plan_overview(
            study, store_path, probe=args.probe, probe_steps=args.probe_steps, progress=progress
        )
    finally:
        for bar in probes:
            bar.close()
    if args.json:
        print_json(out)
        return 0
    rows, est = out["runs"], out["estimate"]
    print(f"study {study.name}: {len(rows)} runs ({out['n_todo']} to run), store {out['store']}")
    print_rows(
        ["run_key", "method", "model", "pet", "data", "seed", "lr", "status", "est_s"],
        [
            [
                r["run_key"],
                r["method"],
                r["model"],
                "" if r["pet_size"] is None else str(r["pet_size"]),
                str(r["data_size"]),
                str(r["seed"]),
                ",".join(f"{v:.2g}" for v in r["lr"]),
                r["status"],
                "?" if r["est_seconds"] is None else f"{r['est_seconds']:.1f}",
            ]
            for r in rows
        ],
    )
    workers = default_workers()
    remaining, unknown = est["remaining_seconds"], est["runs_not_estimated"]
    if out["n_todo"] and unknown == out["n_todo"]:
        print(f"estimated: unknown (run with --probe to measure); basis: {est['basis']}")
        return 0
    startup = est["startup_seconds_per_worker"] or 0.0
    print(
        f"estimated: {remaining / 60:.1f} min of compute left "
        f"(~{(remaining / workers + startup) / 60:.1f} min wall on {workers} workers"
        + (f", {unknown} runs not estimated" if unknown else "")
        + f"); basis: {est['basis']}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.study.runner import run_study

    study, store_path = load_args(args)
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.adaptive:
        from ftscale.cli.study_adaptive import run_adaptive_command

        return run_adaptive_command(args, study, store_path)
    for flag in ("question", "until", "max_core_hours"):
        if getattr(args, flag) is not None:
            raise UserError(f"--{flag.replace('_', '-')} needs --adaptive")
    summary = run_study(
        study,
        store_path,
        backend=args.backend,
        workers=args.workers,
        threads=args.threads,
        retry_failed=args.retry_failed,
        address=args.address,
        progress=not args.no_progress and not args.json,
        executor_kwargs=executor_kwargs(args),
    )
    out = {
        "study": study.name,
        "store": shown_store(store_path),
        "planned": summary.planned,
        "skipped": summary.skipped,
        "ran": summary.ran,
        "counts": summary.counts,
        "seconds": summary.seconds,
        "held_elsewhere": summary.held_elsewhere,
    }
    if args.json:
        print_json(out)
    else:
        c = summary.counts
        print(
            f"study {study.name}: ran {summary.ran} runs in {summary.seconds:.1f}s "
            f"({summary.skipped} already finished); done={c.get('done', 0)} "
            f"failed={c.get('failed', 0)} diverged={c.get('diverged', 0)} "
            f"pending={c.get('pending', 0)} running={c.get('running', 0)}; store {shown_store(store_path)}"
        )
        held = summary.held_elsewhere
        if held:
            wait = max(h["requeue_in"] for h in held)
            hosts = sorted({f"{h['host']}:{h['pid']}" for h in held if h["host"]})
            print(
                f"{len(held)} run(s) still held by other runner(s) ({', '.join(hosts) or 'unknown'}):"
                f" they finish there, or, if that runner died, the next `ftscale study run` "
                f"takes them over once its heartbeat is {wait:.0f} s older"
            )
    return 0 if not summary.counts.get("failed") else 1


def _status(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import print_rows
    from ftscale.study.status import study_status

    study, store_path = load_args(args)
    out = study_status(study, store_path)
    if args.json:
        print_json(out)
        return 0
    cols = ["done", "failed", "diverged", "running", "pending"]
    totals = out["totals"]
    print(f"study {study.name} ({out['store']})")
    print_rows(
        ["method", "model", *cols],
        [[r["method"], r["model"], *(r[k] for k in cols)] for r in out["by"]]
        + [["total", "", *(totals[k] for k in cols)]],
    )
    print(f"new: {totals['new']}")
    if out["hosts"]:
        print_rows(
            ["host (node)", *cols[:4]],
            [[h["host"], *(h[k] for k in cols[:4])] for h in out["hosts"]],
        )
    failures = out["failures"]
    for f in failures[:10]:
        print(
            f"{f['status']} {f['run_key']} ({f['method']} {f['model']} D={f['data_size']} "
            f"seed={f['seed']}; host {f['host']}; attempt {f['attempts']}): {f['reason']}"
        )
    if len(failures) > 10:
        print(f"... and {len(failures) - 10} more (--json lists them all)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ftscale.study.plan import plan_study
    from ftscale.study.results import results_frame
    from ftscale.tables import write_table

    study, store_path = load_args(args)
    keys = [r.run_key for r in plan_study(study)]
    with open_study_store(store_path) as store:
        df = results_frame(store, keys)
    fmt = args.format
    if args.out:
        from pathlib import Path

        from ftscale.tables import table_format

        if Path(args.out).is_dir():
            raise UserError("--out names a folder; give a file name", path=args.out)
        by_name = table_format(args.out)
        if fmt is not None and by_name != fmt:
            raise UserError(
                f"--format {fmt} but --out ends in .{by_name}: the file would not be what its "
                "name says",
                path=args.out,
            )
        write_table(df, args.out, fmt=fmt or by_name)
    elif fmt == "parquet":
        raise UserError("parquet output needs --out FILE")
    elif fmt in (None, "csv"):
        df.to_csv(sys.stdout, index=False)
    else:
        text = df.to_json(orient="records", lines=True)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from ftscale.analysis.study import fit_study, format_fits
    from ftscale.cli._common import print_json, to_json_text
    from ftscale.fsutil import atomic_write

    study, store_path = load_args(args)
    with open_study_store(store_path) as store:
        result = fit_study(study, store)
    if args.out:
        with atomic_write(args.out) as fh:
            fh.write(to_json_text(result))
    if args.json:
        print_json(result)
    else:
        print(format_fits(result))
    return 0
