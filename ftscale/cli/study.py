"""``ftscale study plan|run|status|export|fit|suggest|serve``: declarative sweeps over a durable run
store, and the adaptive design (``suggest``, ``run --adaptive``: :mod:`ftscale.study.adaptive`)."""

from __future__ import annotations

import argparse
import sys

from ftscale.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
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
    sp.set_defaults(func=_suggest)

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


def _load(args: argparse.Namespace):
    from ftscale.study.runner import default_store_path
    from ftscale.study.spec import load_study
    from ftscale.study.storage import parse_store

    if args.store is not None:
        parse_store(args.store)  # a bad URL fails before the study is read
    study = load_study(args.file)
    store = args.store if args.store else str(default_store_path(study))
    return study, store


def _open_store(store: str, must_exist: bool = True):
    from ftscale.study.storage import open_store

    return open_store(store, must_exist=must_exist)


def _shown(store: str) -> str:
    """The store's location for output (a database password redacted)."""
    from ftscale.study.storage import describe_store

    return describe_store(store)


def _plan(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.study.check import check_study_resources
    from ftscale.study.estimate import estimate_runs
    from ftscale.study.plan import plan_study

    study, store_path = _load(args)
    check_study_resources(study)
    runs = plan_study(study)
    status: dict[str, str] = {}
    measured = []
    from ftscale.study.storage import store_exists

    if store_exists(store_path):
        with _open_store(store_path) as store:
            for r in store.runs([r.run_key for r in runs]):
                status[r.run_key] = r.status
                if r.status == "done" and r.record:
                    measured.append(r.record)
    if args.probe_steps <= 0:
        raise UserError(f"--probe-steps must be positive, got {args.probe_steps}")
    probes, startup = None, None
    if args.probe:
        from ftscale.study.estimate import probe_costs

        measured_pairs = {(m.get("model"), m.get("method")) for m in measured}
        unmeasured = [
            r.spec
            for r in runs
            if status.get(r.run_key) != "done"
            and (r.spec["model"], r.spec["method"]) not in measured_pairs
        ]

        def progress(i: int, n: int, key: tuple) -> None:
            print(f"probe {i + 1}/{n}: {' '.join(map(str, key))}", file=sys.stderr, flush=True)

        probes, startup = probe_costs(unmeasured, steps=args.probe_steps, progress=progress)
    est = estimate_runs([r.spec for r in runs], measured, probes)
    from ftscale.finetune.config import lr_candidates
    from ftscale.study.runfn import spec_to_config

    rows = [
        {
            "run_key": r.run_key,
            **{k: r.spec[k] for k in ("task", "method", "model", "pet_size", "data_size", "seed")},
            # the candidate rates the run compares on dev (one: no search)
            "lr": lr_candidates(spec_to_config(r.spec)),
            "status": status.get(r.run_key, "new"),
            "est_seconds": e,
        }
        for r, e in zip(runs, est["per_run"], strict=True)
    ]
    todo = [row for row in rows if row["status"] not in ("done", "failed", "diverged")]
    remaining = sum(row["est_seconds"] or 0.0 for row in todo)
    unknown = sum(row["est_seconds"] is None for row in todo)
    out = {
        "study": study.name,
        "store": _shown(store_path),
        "runs": rows,
        "n_runs": len(rows),
        "n_todo": len(todo),
        "estimate": {
            "total_seconds": est["total_seconds"],
            "remaining_seconds": remaining,
            "runs_not_estimated": unknown,
            "startup_seconds_per_worker": startup,
            "basis": est["basis"],
        },
    }
    if args.json:
        print_json(out)
        return 0
    print(f"study {study.name}: {len(rows)} runs ({len(todo)} to run), store {_shown(store_path)}")
    hdr = (
        f"{'run_key':16}  {'method':7} {'model':14} {'pet':>5} {'data':>8} {'seed':>4}  "
        f"{'lr':18} {'status':8} {'est_s':>7}"
    )
    print(hdr)
    for row in rows:
        est_s = "?" if row["est_seconds"] is None else f"{row['est_seconds']:.1f}"
        pet = "" if row["pet_size"] is None else str(row["pet_size"])
        lr = ",".join(f"{v:.2g}" for v in row["lr"])
        print(
            f"{row['run_key']:16}  {row['method']:7} {row['model']:14} {pet:>5} "
            f"{row['data_size']:>8} {row['seed']:>4}  {lr:18} {row['status']:8} {est_s:>7}"
        )
    workers = _default_workers()
    if todo and unknown == len(todo):
        print(f"estimated: unknown (run with --probe to measure); basis: {est['basis']}")
        return 0
    print(
        f"estimated: {remaining / 60:.1f} min of compute left "
        f"(~{(remaining / workers + (startup or 0.0)) / 60:.1f} min wall on {workers} workers"
        + (f", {unknown} runs not estimated" if unknown else "")
        + f"); basis: {est['basis']}"
    )
    return 0


def _default_workers() -> int:
    from ftscale.study.executors.local import default_workers

    return default_workers()


def _run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.study.runner import run_study

    study, store_path = _load(args)
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.adaptive:
        return _run_adaptive(args, study, store_path)
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
        executor_kwargs=_executor_kwargs(args),
    )
    out = {
        "study": study.name,
        "store": _shown(store_path),
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
            f"pending={c.get('pending', 0)} running={c.get('running', 0)}; store {_shown(store_path)}"
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


def _executor_kwargs(args: argparse.Namespace) -> dict:
    """The Ray back end's resource requests from ``--cpus-per-run`` etc. (checked here)."""
    import json

    out: dict = {}
    for flag in ("cpus_per_run", "gpus_per_run"):
        value = getattr(args, flag)
        if value is None:
            continue
        if not value >= 0 or (flag == "cpus_per_run" and value == 0):
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value:g}")
        out[flag] = value
    if args.resources is not None:
        try:
            res = json.loads(args.resources)
        except ValueError:
            res = None
        if not isinstance(res, dict) or not all(
            isinstance(v, int | float) and v > 0 for v in res.values()
        ):
            raise UserError(
                f"--resources must be a JSON object of positive numbers, got {args.resources!r}"
            )
        out["resources"] = res
    if args.ship_files is not None:
        out["ship_files"] = args.ship_files
    if out and args.backend != "ray":
        raise UserError(
            "--cpus-per-run, --gpus-per-run, --resources and --ship-files need --backend ray"
        )
    return out


def _status(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.study.plan import plan_study
    from ftscale.study.storage import STATUSES

    study, store_path = _load(args)
    keys = [r.run_key for r in plan_study(study)]
    table: dict[tuple[str, str], dict[str, int]] = {}
    hosts: dict[str, dict[str, int]] = {}
    errors, failures = [], []
    with _open_store(store_path) as store:
        stored = {r.run_key: r for r in store.runs(keys)}
        for key in keys:
            run = stored.get(key)
            if run is None:  # planned after the last run (counted as new below)
                continue
            counts = table.setdefault(
                (run.spec["method"], run.spec["model"]), dict.fromkeys(STATUSES, 0)
            )
            counts[run.status] += 1
            if run.host is not None and run.status != "pending":
                hosts.setdefault(run.host, dict.fromkeys(STATUSES[1:], 0))[run.status] += 1
            if run.status == "failed" and run.error:
                errors.append({"run_key": key, "error": run.error.splitlines()[0]})
            if run.status in ("failed", "diverged"):
                reason = (run.error or "").strip().splitlines()
                failures.append(
                    {
                        "run_key": key,
                        "status": run.status,
                        "host": run.host,
                        "attempts": run.attempts,
                        "reason": reason[0] if reason else _no_reason(run.status),
                        **{k: run.spec[k] for k in ("method", "model", "data_size", "seed")},
                    }
                )
    new = len(keys) - len(stored)
    totals = dict.fromkeys(STATUSES, 0)
    for counts in table.values():
        for k, v in counts.items():
            totals[k] += v
    totals["new"] = new
    if args.json:
        print_json(
            {
                "study": study.name,
                "store": _shown(store_path),
                "totals": totals,
                "by": [{"method": m, "model": mo, **c} for (m, mo), c in sorted(table.items())],
                "hosts": [{"host": h, **c} for h, c in sorted(hosts.items())],
                "errors": errors,
                "failures": failures,
            }
        )
        return 0
    cols = ("done", "failed", "diverged", "running", "pending")
    print(f"study {study.name} ({_shown(store_path)})")
    print(f"{'method':8} {'model':16} " + " ".join(f"{c:>8}" for c in cols))
    for (m, mo), c in sorted(table.items()):
        print(f"{m:8} {mo:16} " + " ".join(f"{c[k]:>8}" for k in cols))
    print(f"{'total':25} " + " ".join(f"{totals[k]:>8}" for k in cols) + f"   new: {new}")
    if hosts:
        print(f"{'host (node)':34} " + " ".join(f"{c:>8}" for c in cols[:4]))
        for h, c in sorted(hosts.items()):
            print(f"{h[:34]:34} " + " ".join(f"{c[k]:>8}" for k in cols[:4]))
    for f in failures[:10]:
        print(
            f"{f['status']} {f['run_key']} ({f['method']} {f['model']} D={f['data_size']} "
            f"seed={f['seed']}; host {f['host']}; attempt {f['attempts']}): {f['reason']}"
        )
    if len(failures) > 10:
        print(f"... and {len(failures) - 10} more (--json lists them all)")
    return 0


def _no_reason(status: str) -> str:
    return "the loss diverged (NaN or inf)" if status == "diverged" else "no reason recorded"


def _export(args: argparse.Namespace) -> int:
    from ftscale.study.plan import plan_study
    from ftscale.study.results import results_frame
    from ftscale.tables import write_table

    study, store_path = _load(args)
    keys = [r.run_key for r in plan_study(study)]
    with _open_store(store_path) as store:
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

    study, store_path = _load(args)
    with _open_store(store_path) as store:
        result = fit_study(study, store)
    if args.out:
        with atomic_write(args.out) as fh:
            fh.write(to_json_text(result))
    if args.json:
        print_json(result)
    else:
        print(format_fits(result))
    return 0


def _budget_seconds(hours: float | None, flag: str) -> float | None:
    if hours is None:
        return None
    if not hours > 0:
        raise UserError(f"{flag} must be positive, got {hours:g}")
    return hours * 3600.0


def _suggest(args: argparse.Namespace) -> int:
    from ftscale.analysis.study import fit_study
    from ftscale.cli._common import print_json
    from ftscale.study.adaptive import fit_or_none, suggest

    study, store_path = _load(args)
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    budget = _budget_seconds(args.budget_core_hours, "--budget-core-hours")
    with _open_store(store_path) as store:
        doc = fit_or_none(fit_study, study, store)
        if doc is None:
            raise UserError(
                f"study {study.name}: no finished runs yet: run `ftscale study run --adaptive` "
                "(its first round makes the laws fittable)"
            )
        out = suggest(study, store, doc, args.question, n=args.n, budget=budget)
    out["store"] = _shown(store_path)
    if args.json:
        print_json(out)
        return 0
    print(format_suggestions(out))
    return 0


def format_suggestions(out: dict) -> str:
    """:func:`ftscale.study.adaptive.suggest`'s answer in words and a table."""
    from ftscale.analysis.health import method_label

    lines = [f"study {out['study']}: {out['question']}"]
    cur = out.get("current")
    if cur is not None:
        if out["kind"] == "recommend":
            lines.append(
                f"now: {method_label(cur['best'])} is best with P(best) {cur['p_best']:.3f} "
                f"(P(not best) {cur['uncertainty']:.3f}); seed noise {out['sigma']:.2g} nats/token"
            )
        else:
            lines.append(
                f"now: critical data size ~{cur['critical_data_size']:.3g} examples, 95% interval "
                f"{cur['width_log10']:.2f} decades wide (P(cross) {cur['p_crossing']:.2f}); "
                f"seed noise {out['sigma']:.2g} nats/token"
            )
    what = "P(not best)" if out["kind"] == "recommend" else "width(log10)"
    unit = "core-s" if out["cost_units"] == "core-seconds" else "cost(rel)"
    lines.append(
        f"{'#':>2} {'run_key':16} {'method':7} {'model':14} {'data':>8} {'seed':>4} "
        f"{unit:>10} {'expected ' + what:>24} {'reduction':>10}"
    )
    for i, r in enumerate(out["suggestions"], 1):
        exp = "-" if r["expected_uncertainty"] is None else f"{r['expected_uncertainty']:.4g}"
        red = "-" if r["expected_reduction"] is None else f"{r['expected_reduction']:.4g}"
        lines.append(
            f"{i:>2} {r['run_key']:16} {r['method']:7} {r['model']:14} {r['data_size']:>8} "
            f"{r['seed']:>4} {r['cost']:>10.3g} {exp:>24} {red:>10}"
        )
    if not out["suggestions"]:
        lines.append(
            "no suggestion"
            + (": every planned run has finished" if out["mode"] == "exhausted" else "")
        )
    lines += [f"note: {n}" for n in out["notes"]]
    return "\n".join(lines)


def _run_adaptive(args: argparse.Namespace, study, store_path: str) -> int:
    from ftscale.analysis.study import fit_study
    from ftscale.cli._common import print_json
    from ftscale.study.adaptive import parse_question, parse_until, run_adaptive
    from ftscale.study.check import check_study_resources
    from ftscale.study.runner import run_study

    kind = parse_question(args.question, study).kind  # bad text fails before any run
    if args.until is not None:
        parse_until(args.until, kind)
    budget = _budget_seconds(args.max_core_hours, "--max-core-hours")
    check_study_resources(study)
    workers = args.workers or _default_workers()
    executor_kwargs = _executor_kwargs(args)
    ran: dict[str, int] = {"failed": 0}

    def run_keys(keys: set[str]) -> None:
        summary = run_study(
            study,
            store_path,
            backend=args.backend,
            workers=min(workers, len(keys)),
            threads=args.threads,
            retry_failed=False,
            address=args.address,
            progress=False,
            only=keys,
            executor_kwargs=executor_kwargs,
        )
        ran["failed"] += summary.counts.get("failed", 0)

    def progress(rnd: dict, current: dict | None) -> None:
        if args.json or args.no_progress:
            return
        now = "" if current is None else f" (uncertainty before {current['uncertainty']:.4g})"
        print(
            f"round {rnd['round']} ({rnd['mode']}): {rnd['runs']} runs, cost {rnd['cost']:.3g}"
            + now,
            file=sys.stderr,
            flush=True,
        )

    out = run_adaptive(
        study,
        store_path,
        run_keys,
        fit_study,
        question=args.question,
        until=args.until,
        max_cost=budget,
        round_size=workers,
        progress=progress,
    )
    out["store"] = _shown(store_path)
    if args.json:
        print_json(out)
        return 0
    why = {
        "criterion": f"the criterion holds ({out['until']})",
        "budget": "the next round would exceed --max-core-hours",
        "exhausted": "every planned run has finished",
        "no_gain": "no unfinished run is expected to sharpen the answer",
        "max_rounds": "the round limit",
    }[out["stopped"]]
    unit = "core-seconds" if out["cost_units"] == "core-seconds" else "relative cost units"
    cur = out["current"] or {}
    state = ""
    if "p_best" in cur:
        state = f"; best {cur['best']} with P(best) {cur['p_best']:.3f}"
    elif "width_log10" in cur:
        state = (
            f"; critical data size ~{cur['critical_data_size']:.3g} examples, interval "
            f"{cur['width_log10']:.2f} decades"
        )
    print(
        f"study {study.name}: {out['question']}: ran {out['runs']} runs in "
        f"{len(out['rounds'])} rounds ({out['core_seconds']:.0f} core-seconds measured; "
        f"{out['spent']:.3g} {unit} estimated); stopped: {why}"
        + ("" if out["criterion_met"] else f" (criterion {out['until']} NOT met)")
        + state
    )
    return 0 if not ran["failed"] else 1
