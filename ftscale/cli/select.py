"""``ftscale select``: pick the model to finetune from cheap small-data runs."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "select",
        help="rank candidate models by predicted loss at a target data size from cheap runs",
        description="Fit the rectified law L = B/(D_l + D^beta) + E to each candidate's losses "
        "at data sizes <= --budget and predict each one's loss at --target, with an interval "
        "from the residual noise (estimated from all candidates). The pick is the candidate "
        "with the lowest loss at the budget unless another is predicted lower at the target "
        "with confidence >= --confidence. TABLE is wide (one row per model, integer column "
        "headers are data sizes) or long (model, data_size, loss; seeds averaged).",
    )
    p.add_argument("table", metavar="TABLE")
    p.add_argument(
        "--budget", required=True, type=float, help="largest data size usable (examples)"
    )
    p.add_argument("--target", required=True, type=float, help="data size to predict at (examples)")
    p.add_argument("--id-col", default="model", help="model id column (default model)")
    p.add_argument("--law", default="rectified", help="one-factor law (rectified or power)")
    p.add_argument(
        "--confidence",
        type=float,
        default=0.9,
        help="confidence needed to pick another model than the best at the budget (default 0.9)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_num, print_rows
    from ftscale.lawfit import read_curves
    from ftscale.laws.selection import select_model

    curves = read_curves(args.table, id_col=args.id_col)
    sel = select_model(curves, args.budget, args.target, args.law, confidence=args.confidence)
    out = {"budget": args.budget, "target": args.target, "law": args.law, **sel}
    if args.json:
        print_json(out)
        return 0
    print_rows(
        ["rank", "model", "predicted_loss", "95%_interval", "p_best", "points"],
        [
            [
                str(i),
                r["model"],
                r["predicted_loss"],
                f"[{fmt_num(r['predicted_loss_ci'][0])}, {fmt_num(r['predicted_loss_ci'][1])}]",
                f"{r['p_best']:.2f}",
                r["n_points"],
            ]
            for i, r in enumerate(sel["predictions"], start=1)
        ],
    )
    why = (
        f"lower at the target than the budget-best {sel['budget_best']} with "
        f"confidence {sel['p_beats_budget_best']:.2f} >= {sel['confidence']:g}"
        if sel["flipped"]
        else f"the best at the budget; no other model is lower at the target with confidence "
        f">= {sel['confidence']:g}"
    )
    print(
        f"best: {sel['best']} (p_best {sel['p_best']:.2f}; {why}; predicted at "
        f"{args.target:g} examples from runs <= {args.budget:g}, relative noise "
        f"{sel['noise']:.2g} estimated from the residuals)"
    )
    likeliest = max(sel["predictions"], key=lambda r: r["p_best"])
    if likeliest["model"] != sel["best"]:
        print(
            f"most likely best by the fits alone: {likeliest['model']} (p_best "
            f"{likeliest['p_best']:.2f}; not confidently lower than the budget-best)"
        )
    return 0
