"""``ftscale select``: pick the model to finetune from cheap runs at small data sizes."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ftscale.laws.selection import DEFAULT_METHOD, METHODS

    p = subparsers.add_parser(
        "select",
        help="rank candidate models by predicted loss at a target data size from cheap runs",
        description="Rank candidates (models, or model x method pairs) by their predicted loss "
        "at --target examples, using only their losses at data sizes <= --budget. TABLE is wide "
        "(one row per candidate; integer column headers are data sizes, `0` the zero-shot loss; "
        "`size`/`model_size` and `family` columns are covariates, others are ignored) or long "
        "(model, data_size, loss, optional model_size and family; seeds averaged). Methods: "
        + ", ".join(METHODS)
        + f" (default {DEFAULT_METHOD}; docs/laws.md says what each does and its source).",
    )
    p.add_argument("table", metavar="TABLE")
    p.add_argument(
        "--budget", required=True, type=float, help="largest data size usable (examples)"
    )
    p.add_argument("--target", required=True, type=float, help="data size to predict at (examples)")
    p.add_argument("--id-col", default="model", help="candidate id column (default model)")
    p.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        choices=list(METHODS),
        metavar="NAME",
        help=f"selection method: {', '.join(METHODS)} (default {DEFAULT_METHOD})",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import print_rows
    from ftscale.lawfit import read_candidates
    from ftscale.laws.selection import select
    from ftscale.textfmt import fmt_num

    curves = read_candidates(args.table, id_col=args.id_col)
    sel = select(curves, args.budget, args.target, args.method)
    if args.json:
        print_json(sel)
        return 0

    def interval(r):
        ci = r["predicted_loss_ci"]
        return "-" if ci is None else f"[{fmt_num(ci[0])}, {fmt_num(ci[1])}]"

    print_rows(
        ["rank", "model", "predicted_loss", "95%_interval", "p_best", "points"],
        [
            [
                str(i),
                r["model"],
                "-" if r["predicted_loss"] is None else r["predicted_loss"],
                interval(r),
                "-" if r["p_best"] is None else f"{r['p_best']:.2f}",
                r["n_points"],
            ]
            for i, r in enumerate(sel["predictions"], start=1)
        ],
    )
    p = "" if sel["p_best"] is None else f", p_best {sel['p_best']:.2f}"
    print(
        f"best: {sel['best']} (method {sel['method']}{p}; predicted at {args.target:g} examples "
        f"from runs <= {args.budget:g})"
    )
    return 0
