"""``ftscale critical``: critical finetuning data sizes between fitted methods."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "critical",
        help="data sizes where two methods' fitted laws predict equal loss",
        description="Critical finetuning data size between methods, from a fits file written by "
        "`ftscale fit --group-by method --out FITS.json`. With `--bootstrap N` in that fit, each "
        "critical size comes with a 95% bootstrap interval and the share of bootstrap draws that "
        "cross in the range (p_crossing).",
    )
    p.add_argument("fits", metavar="FITS.json")
    p.add_argument("--methods", help="M1,M2[,...]: pairs of these methods (default: all methods)")
    p.add_argument("--at", help="factor values X1,X2,... (required for two-factor laws)")
    p.add_argument("--range", default="1,1e12", help="LO,HI data-size range (examples)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.analysis.compare import critical_pairs
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, fmt_num, parse_floats, parse_range, print_rows
    from ftscale.laws.critical import format_h

    rng = parse_range(args.range)
    at = parse_floats(args.at, "--at") if args.at else None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    out = critical_pairs(args.fits, methods=methods, at=at, lo=rng[0], hi=rng[1])
    if args.json:
        print_json(out)
        return 0
    rows = []
    for pair in out["pairs"]:
        cf = pair["closed_form"]
        for pt in pair["points"]:
            ci = pt.get("critical_data_size_ci")
            p_cross = pt.get("p_crossing")
            rows.append(
                [
                    fmt_group(pair["context"]),
                    " vs ".join(pair["methods"]),
                    fmt_num(pt["x"]),
                    (fmt_num(pt["critical_data_size"]) if pt["critical_data_size"] else pt["note"])
                    + (" (extrapolated beyond the runs)" if pt.get("extrapolated") else ""),
                    "-" if ci is None else f"[{fmt_num(ci[0])}, {fmt_num(ci[1])}]",
                    "-" if p_cross is None else f"{p_cross:.2f}",
                    ", ".join(fmt_num(c) for c in pt["crossings"]) or "-",
                    "-" if cf is None else f"H={format_h(cf)} gamma={fmt_num(cf['gamma'])}",
                ]
            )
    print_rows(
        [
            "context",
            "methods",
            "x",
            "critical_data_size",
            "95%_interval",
            "p_crossing",
            "crossings",
            "closed_form",
        ],
        rows,
    )
    return 0
