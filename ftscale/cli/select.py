"""``ftscale select``: pick the model to finetune from cheap small-data runs."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "select",
        help="rank candidate models by predicted loss at a target data size from cheap runs",
        description="Fit the rectified law L = B/(D_l + D^beta) + E to each candidate's losses "
        "at data sizes <= --budget and rank the candidates by predicted loss at --target. TABLE "
        "is wide (one row per model, integer column headers are data sizes) or long "
        "(model, data_size, loss).",
    )
    p.add_argument("table", metavar="TABLE")
    p.add_argument(
        "--budget", required=True, type=float, help="largest data size usable (examples)"
    )
    p.add_argument("--target", required=True, type=float, help="data size to predict at (examples)")
    p.add_argument("--id-col", default="model", help="model id column (default model)")
    p.add_argument("--law", default="rectified", help="one-factor law (rectified or power)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import print_rows
    from ftscale.lawfit import read_curves
    from ftscale.laws.selection import select_model

    curves = read_curves(args.table, id_col=args.id_col)
    ranked = select_model(curves, args.budget, args.target, args.law)
    out = {
        "budget": args.budget,
        "target": args.target,
        "law": args.law,
        "predictions": ranked,
        "best": ranked[0]["model"],
    }
    if args.json:
        print_json(out)
        return 0
    print_rows(
        ["rank", "model", "predicted_loss", "points", "converged"],
        [
            [
                str(i),
                r["model"],
                r["predicted_loss"],
                r["n_points"],
                "yes" if r["converged"] else "NO",
            ]
            for i, r in enumerate(ranked, start=1)
        ],
    )
    print(
        f"best: {out['best']} (predicted at {args.target:g} examples from runs <= {args.budget:g})"
    )
    return 0
