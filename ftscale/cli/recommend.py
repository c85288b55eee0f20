"""``ftscale recommend``: rank methods for a factor value and a data size."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ftscale.cli._laws_common import FITS_FROM, fits_command
    from ftscale.laws.recommend import COST_PREFERENCE

    p = fits_command(
        subparsers,
        "recommend",
        help="rank finetuning methods by predicted loss (and cost) for a model and data budget",
        description="Rank methods by predicted loss at factor value X and data size D, from "
        f"{FITS_FROM}. With --budget-flops F (or --budget-seconds S) instead of --data-size, "
        "methods are compared at one compute budget: each trains on the data size its fitted "
        "cost model affords. With --pet-size (automatic for fits over pet_size when --at is not "
        "given), the PET size to use per method at data size D.",
    )
    p.add_argument("--at", help="factor value X (e.g. model size; required for two-factor laws)")
    p.add_argument(
        "--law",
        help="use this law's fits (default: each group's chosen law, its bootstrap draws pooled "
        "with the group's other laws by weight, as `study fit` answers)",
    )
    p.add_argument("--data-size", help="finetuning examples D (not with a budget)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--budget-flops",
        help="compute budget in training FLOPs: compare methods at the data size each affords",
    )
    budget.add_argument(
        "--budget-seconds",
        help="compute budget in training seconds (train_seconds cost models)",
    )
    p.add_argument(
        "--pet-size",
        action="store_true",
        help="choose the PET size per method at --data-size (fits over pet_size)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="nats/token: cheapest method within this of the best (default 0.01)",
    )
    costs = ", ".join(COST_PREFERENCE)
    p.add_argument(
        "--cost", help=f"cost column to minimise (default: {costs}, the first every method has)"
    )
    p.add_argument("--range", default="1,1e12", help="LO,HI data-size range for ranking flips")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.analysis.compare import recommend_from_fits
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, parse_floats, parse_range, print_rows
    from ftscale.errors import UserError
    from ftscale.textfmt import fmt_num

    at = parse_floats(args.at, "--at") if args.at else None
    if at is not None and len(at) != 1:
        raise UserError("--at takes one factor value")
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {args.tolerance}")
    if args.budget_flops or args.budget_seconds:
        return _run_budget(args, None if at is None else at[0])
    if args.data_size is None:
        raise UserError("give --data-size D, or a budget (--budget-flops / --budget-seconds)")
    if args.pet_size and at is not None:
        raise UserError("--pet-size chooses the PET size: leave out --at")
    if args.pet_size or (at is None and _over_pet_size(args.fits)):
        return _run_pet_size(args)
    ds = parse_floats(args.data_size, "--data-size")
    if len(ds) != 1:
        raise UserError("--data-size takes one data size")
    d = ds[0]
    rng = parse_range(args.range)
    out = recommend_from_fits(
        args.fits,
        x=None if at is None else at[0],
        data_size=d,
        tolerance=args.tolerance,
        cost=args.cost,
        lo=rng[0],
        hi=rng[1],
        law=args.law,
    )
    if args.json:
        print_json(out)
        return 0
    for rec in out["recommendations"]:
        print(
            f"context {fmt_group(rec['context'])}: x={fmt_num(rec['x'])} data_size={fmt_num(rec['data_size'])}"
        )
        rows = []
        for i, r in enumerate(rec["ranking"], start=1):
            iv = r["interval"]
            cost = fmt_num(r["cost"].get(rec["cost_column"])) if rec["cost_column"] else "-"
            pb = r.get("p_best")
            rows.append(
                [
                    str(i),
                    r["method"],
                    r["predicted_loss"],
                    "-" if iv is None else f"[{fmt_num(iv[0])}, {fmt_num(iv[1])}]",
                    "-" if pb is None else f"{pb:.2f}",
                    cost,
                    "yes"
                    if r.get("extrapolated")
                    else "no"
                    if r.get("extrapolated") is False
                    else "?",
                ]
            )
        print_rows(
            [
                "rank",
                "method",
                "predicted_loss",
                "95% interval",
                "p_best",
                rec["cost_column"] or "cost",
                "beyond_runs",
            ],
            rows,
        )
        print(
            f"best: {rec['best']}; ranking flips at data size: "
            + (
                ", ".join(
                    f"{fmt_num(f['data_size'])} ({f['from']}->{f['to']}"
                    + (", extrapolated beyond the runs)" if f.get("extrapolated") else ")")
                    for f in rec["flips"]
                )
                or "none in range"
            )
        )
        ch = rec["cheapest_within_tolerance"]
        if ch:
            print(
                f"cheapest within {fmt_num(rec['tolerance'])} nats/token of the best: {ch['method']} "
                f"({rec['cost_column']} {fmt_num(ch['cost'])}, loss {fmt_num(ch['predicted_loss'])})"
            )
    return 0


def _over_pet_size(path: str) -> bool:
    """Whether every fit of a fits file is over pet_size."""
    from ftscale.laws.io import load_fits

    recs = load_fits(path)
    return bool(recs) and all(r.get("factor") == "pet_size" for r in recs)


def _run_budget(args: argparse.Namespace, x: float | None) -> int:
    from ftscale.analysis.compare import BUDGET_COLUMNS, budget_from_fits
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, parse_floats, print_rows
    from ftscale.errors import UserError
    from ftscale.textfmt import fmt_num

    if args.data_size is not None:
        raise UserError("--data-size and a budget exclude each other: the budget sets D")
    if args.pet_size:
        raise UserError("--pet-size takes --data-size, not a budget")
    axis, text = (
        ("flops", args.budget_flops) if args.budget_flops else ("seconds", args.budget_seconds)
    )
    flag = f"--budget-{axis}"
    vals = parse_floats(text, flag)
    if len(vals) != 1:
        raise UserError(f"{flag} takes one budget")
    out = budget_from_fits(
        args.fits, x=x, budget=vals[0], column=BUDGET_COLUMNS[axis], law=args.law
    )
    if args.json:
        print_json(out)
        return 0
    for rec in out["recommendations"]:
        print(
            f"context {fmt_group(rec['context'])}: x={fmt_num(rec['x'])} "
            f"budget={fmt_num(rec['budget'])} {rec['cost_column']}"
        )
        rows = []
        for i, r in enumerate(rec["ranking"], start=1):
            iv, pb, cm = r["interval"], r.get("p_best"), r["cost_model"]
            p = cm["params"]
            rows.append(
                [
                    str(i),
                    r["method"],
                    fmt_num(r["data_size_at_budget"]),
                    r["predicted_loss"],
                    "-" if iv is None else f"[{fmt_num(iv[0])}, {fmt_num(iv[1])}]",
                    "-" if pb is None else f"{pb:.2f}",
                    f"exp({p['c0']:.3g}) X^{p['c1']:.3g} D^{p['c2']:.3g}",
                    "-" if cm["error"] is None else f"{cm['error']:.3g}",
                    {True: "yes", False: "no"}.get(r.get("extrapolated"), "?"),
                ]
            )
        print_rows(
            [
                "rank",
                "method",
                "data_size_at_budget",
                "predicted_loss",
                "95% interval",
                "p_best",
                f"cost model ({rec['cost_column']})",
                "rms_log_error",
                "beyond_runs",
            ],
            rows,
        )
        pb = rec["p_best"]
        print(
            f"best at this budget: {rec['best']}"
            + ("" if pb is None else f" (p_best {pb:.2f} over {rec['n_draws']} draws)")
            + f"; data sizes from each method's fitted {rec['cost_column']} cost model"
        )
    return 0


def _run_pet_size(args: argparse.Namespace) -> int:
    from ftscale.analysis.compare import pet_size_from_fits
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, parse_floats, print_rows
    from ftscale.errors import UserError
    from ftscale.textfmt import fmt_num

    ds = parse_floats(args.data_size, "--data-size")
    if len(ds) != 1:
        raise UserError("--data-size takes one data size")
    out = pet_size_from_fits(args.fits, data_size=ds[0], tolerance=args.tolerance)
    if args.json:
        print_json(out)
        return 0
    for ctx in out["pet_size_choice"]:
        print(f"context {fmt_group(ctx['context'])}: data_size={fmt_num(out['data_size'])}")
        rows = []
        for m, ch in ctx["methods"].items():
            for c in ch["candidates"]:
                iv = c["interval"]
                mark = []
                if c["pet_size"] == ch["best"]:
                    mark.append("best")
                if c["pet_size"] == ch["smallest_within_tolerance"]:
                    mark.append("smallest within tolerance")
                rows.append(
                    [
                        m,
                        fmt_num(c["pet_size"]),
                        c["predicted_loss"],
                        "-" if iv is None else f"[{fmt_num(iv[0])}, {fmt_num(iv[1])}]",
                        "-" if c["p_best"] is None else f"{c['p_best']:.2f}",
                        {True: "yes", False: "no"}.get(c.get("extrapolated"), "?"),
                        ", ".join(mark),
                    ]
                )
        print_rows(
            ["method", "pet_size", "predicted_loss", "95% interval", "p_best", "beyond_runs", ""],
            rows,
        )
        for m, ch in ctx["methods"].items():
            pw = ch["p_within_tolerance"]
            print(
                f"{m}: use pet_size {fmt_num(ch['smallest_within_tolerance'])}, the smallest "
                f"within {fmt_num(out['tolerance'])} nats/token of the best "
                f"({fmt_num(ch['best'])}; gap {fmt_num(ch['loss_gap'])}"
                + ("" if pw is None else f", within tolerance in {pw:.2f} of the draws")
                + ")"
            )
    return 0
