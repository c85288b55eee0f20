"""``ftscale study suggest`` and ``ftscale study run --adaptive``: the adaptive design
(:mod:`ftscale.study.adaptive`) on the command line."""

from __future__ import annotations

import argparse

from ftscale.cli._study_common import (
    default_workers,
    executor_kwargs,
    load_args,
    open_study_store,
    shown_store,
)
from ftscale.errors import UserError


def _budget_seconds(hours: float | None, flag: str) -> float | None:
    if hours is None:
        return None
    if not hours > 0:
        raise UserError(f"{flag} must be positive, got {hours:g}")
    return hours * 3600.0


def suggest_command(args: argparse.Namespace) -> int:
    from ftscale.analysis.study import fit_study
    from ftscale.cli._common import print_json
    from ftscale.study.adaptive import fit_or_none, suggest

    study, store_path = load_args(args)
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got {args.n}")
    budget = _budget_seconds(args.budget_core_hours, "--budget-core-hours")
    with open_study_store(store_path) as store:
        doc = fit_or_none(fit_study, study, store)
        if doc is None:
            raise UserError(
                f"study {study.name}: no finished runs yet: run `ftscale study run --adaptive` "
                "(its first round makes the laws fittable)"
            )
        out = suggest(study, store, doc, args.question, n=args.n, budget=budget)
    out["store"] = shown_store(store_path)
    if args.json:
        print_json(out)
        return 0
    print(format_suggestions(out))
    return 0


def format_suggestions(out: dict) -> str:
    """:func:`ftscale.study.adaptive.suggest`'s answer in words and a table."""
    from ftscale.analysis.health import method_label
    from ftscale.cli._laws_common import format_rows

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
    lines += format_rows(
        ["#", "run_key", "method", "model", "data", "seed", unit, "expected " + what, "reduction"],
        [
            [
                str(i),
                r["run_key"],
                r["method"],
                r["model"],
                str(r["data_size"]),
                str(r["seed"]),
                f"{r['cost']:.3g}",
                "-" if r["expected_uncertainty"] is None else f"{r['expected_uncertainty']:.4g}",
                "-" if r["expected_reduction"] is None else f"{r['expected_reduction']:.4g}",
            ]
            for i, r in enumerate(out["suggestions"], 1)
        ],
    )
    if not out["suggestions"]:
        lines.append(
            "no suggestion"
            + (": every planned run has finished" if out["mode"] == "exhausted" else "")
        )
    lines += [f"note: {n}" for n in out["notes"]]
    return "\n".join(lines)


def run_adaptive_command(args: argparse.Namespace, study, store_path: str) -> int:
    from ftscale.analysis.study import fit_study
    from ftscale.cli._common import print_json
    from ftscale.study.adaptive import parse_question, parse_until, run_adaptive
    from ftscale.study.check import check_study_resources
    from ftscale.study.progress import Progress
    from ftscale.study.runner import run_study

    kind = parse_question(args.question, study).kind  # bad text fails before any run
    if args.until is not None:
        parse_until(args.until, kind)
    budget = _budget_seconds(args.max_core_hours, "--max-core-hours")
    check_study_resources(study)
    workers = args.workers or default_workers()
    ray_kwargs = executor_kwargs(args)
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
            executor_kwargs=ray_kwargs,
        )
        ran["failed"] += summary.counts.get("failed", 0)

    bar = Progress(None, desc="adaptive", unit="round", enabled=not (args.json or args.no_progress))

    def progress(rnd: dict, current: dict | None) -> None:
        now = "" if current is None else f" (uncertainty before {current['uncertainty']:.4g})"
        runs = f"{rnd['runs']} runs, cost {rnd['cost']:.3g}{now}"
        bar.event(f"round {rnd['round']} ({rnd['mode']}): {runs}", postfix=f"{rnd['mode']}: {runs}")

    with bar:
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
    out["store"] = shown_store(store_path)
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
