"""``ftscale recommend``: rank methods for a factor value and a data size."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="rank finetuning methods by predicted loss (and cost) for a model and data budget",
        description="Rank methods by predicted loss at factor value X and data size D, from a "
        "fits file written by `ftscale fit --group-by method --out FITS.json`.",
    )
    p.add_argument("fits", metavar="FITS.json")
    p.add_argument("--at", help="factor value X (e.g. model size; required for two-factor laws)")
    p.add_argument("--data-size", required=True, help="finetuning examples D")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="nats/token: cheapest method within this of the best (default 0.01)",
    )
    p.add_argument(
        "--cost",
        help="cost column to minimise (default: train_seconds, flops, "
        "peak_mem_bytes, trainable_params, the first every method has)",
    )
    p.add_argument("--range", default="1,1e12", help="LO,HI data-size range for ranking flips")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.analysis.compare import recommend_from_fits
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, fmt_num, parse_floats, parse_range, print_rows
    from ftscale.errors import UserError

    at = parse_floats(args.at, "--at") if args.at else None
    if at is not None and len(at) != 1:
        raise UserError("--at takes one factor value")
    ds = parse_floats(args.data_size, "--data-size")
    if len(ds) != 1:
        raise UserError("--data-size takes one data size")
    d = ds[0]
    rng = parse_range(args.range)
    if not args.tolerance >= 0:
        raise UserError(f"--tolerance must be >= 0, got {args.tolerance}")
    out = recommend_from_fits(
        args.fits,
        x=None if at is None else at[0],
        data_size=d,
        tolerance=args.tolerance,
        cost=args.cost,
        lo=rng[0],
        hi=rng[1],
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
