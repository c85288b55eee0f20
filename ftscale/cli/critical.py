"""``ftscale critical``: critical finetuning data sizes between fitted methods."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ftscale.cli._laws_common import FITS_FROM, fits_command

    p = fits_command(
        subparsers,
        "critical",
        help="data sizes where two methods' fitted laws predict equal loss",
        description=f"Critical finetuning data size between methods, from {FITS_FROM}. With "
        "`--bootstrap N` in that fit, each critical size comes with a 95% bootstrap interval and "
        "the share of bootstrap draws that cross in the range (p_crossing).",
    )
    p.add_argument("--methods", help="M1,M2[,...]: pairs of these methods (default: all methods)")
    p.add_argument("--at", help="factor values X1,X2,... (required for two-factor laws)")
    p.add_argument(
        "--law",
        help="use this law's fits (default: each group's chosen law, its bootstrap draws pooled "
        "with the group's other laws by weight, as `study fit` answers)",
    )
    p.add_argument(
        "--axis",
        choices=("data", "flops", "seconds"),
        default="data",
        help="data: critical data size (default); flops / seconds: the compute budget at "
        "which the methods' compute-matched losses cross (from their fitted cost models)",
    )
    p.add_argument(
        "--range",
        help="LO,HI range searched: examples (default 1,1e12) or, with --axis flops/seconds, "
        "budget units (default: the budgets that train both methods on 1 to 1e12 examples)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.analysis.compare import BUDGET_COLUMNS, critical_budget_pairs, critical_pairs
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import parse_floats, parse_range, print_rows

    at = parse_floats(args.at, "--at") if args.at else None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if args.axis == "data":
        rng = parse_range(args.range or "1,1e12")
        out = critical_pairs(args.fits, methods=methods, at=at, lo=rng[0], hi=rng[1], law=args.law)
        key, name, tail = "critical_data_size", "critical_data_size", _data_tail
        extra = ["crossings", "closed_form"]
    else:
        rng = parse_range(args.range) if args.range else None
        column = BUDGET_COLUMNS[args.axis]
        out = critical_budget_pairs(
            args.fits, column=column, methods=methods, at=at, rng=rng, law=args.law
        )
        key, name, tail = "critical_budget", f"critical_{args.axis}", _budget_tail
        extra = ["data_sizes_there", f"{column}_model_rms_log_error"]
    if args.json:
        print_json(out)
        return 0
    rows = [
        [*_point_cells(pair, pt, key), *tail(pair, pt)]
        for pair in out["pairs"]
        for pt in pair["points"]
    ]
    print_rows(["context", "methods", "x", name, "95%_interval", "p_crossing", *extra], rows)
    if args.axis != "data":
        print(
            f"compute-matched: each method trains on the data size its fitted {column} cost "
            "model (exp(c0) X^c1 D^c2) affords at the budget"
        )
    return 0


def _data_tail(pair: dict, pt: dict) -> list[str]:
    """A critical data size's last cells: every crossing, and the closed form if any."""
    from ftscale.laws.critical import format_h
    from ftscale.textfmt import fmt_num

    cf = pair["closed_form"]
    return [
        ", ".join(fmt_num(c) for c in pt["crossings"]) or "-",
        "-" if cf is None else f"H={format_h(cf)} gamma={fmt_num(cf['gamma'])}",
    ]


def _budget_tail(pair: dict, pt: dict) -> list[str]:
    """A critical budget's last cells: the data sizes (examples) each method trains on there,
    and the cost models' RMS log errors."""
    from ftscale.textfmt import fmt_num

    ds = pt.get("data_sizes")
    return [
        "-" if ds is None else " / ".join(fmt_num(d) for d in ds),
        " / ".join("-" if c["error"] is None else f"{c['error']:.3g}" for c in pair["cost_models"]),
    ]


def _point_cells(pair: dict, pt: dict, key: str) -> list[str]:
    """A critical point's first table cells: context, methods, factor value, the crossing
    ``key`` (its note if none; marked where it lies beyond the runs), its 95% interval
    (``key``_ci) and p_crossing."""
    from ftscale.cli._laws_common import fmt_group
    from ftscale.textfmt import fmt_interval, fmt_num

    ci, pc = pt.get(f"{key}_ci"), pt.get("p_crossing")
    return [
        fmt_group(pair["context"]),
        " vs ".join(pair["methods"]),
        fmt_num(pt["x"]),
        (fmt_num(pt[key]) if pt[key] else pt["note"])
        + (" (extrapolated beyond the runs)" if pt.get("extrapolated") else ""),
        "-" if ci is None else fmt_interval(ci, fmt_num),
        "-" if pc is None else f"{pc:.2f}",
    ]
