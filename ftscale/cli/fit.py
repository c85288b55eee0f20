"""``ftscale fit``: fit a scaling law per group of a results table."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from ftscale.laws.registry import LAWS

    p = subparsers.add_parser(
        "fit",
        help="fit a scaling law (or --law auto: every law, the best by held-out error)",
        description="Fit a finetuning scaling law per group of a results table (CSV/TSV, "
        "Parquet or JSONL): long (one row per run, a data-size column) or wide (one row per "
        "model, every integer column header a data size in examples with losses as cells, "
        "'0' the zero-shot loss; one fit per row unless --group-by is given).",
    )
    p.add_argument("table", metavar="TABLE")
    laws = " | ".join(LAWS)
    p.add_argument(
        "--law",
        required=True,
        help="auto (every law with --factor's number of factors; the one with the lowest "
        f"cross-validated extrapolation error is marked chosen) | {laws}",
    )
    p.add_argument(
        "--factor", help="column of the second factor X (model_size, pretrain_tokens, pet_size)"
    )
    p.add_argument("--data", default="data_size", help="data-size column (default data_size)")
    p.add_argument(
        "--target",
        default="loss",
        help="loss column, nats/token (default loss; also e.g. forgetting, forget_loss); "
        "a group with a seed-mean target <= 0 is not fitted",
    )
    p.add_argument(
        "--group-by",
        default="",
        help="comma-separated columns, one fit per group (a wide table: default --id-col)",
    )
    p.add_argument(
        "--id-col",
        help="a wide table's model id column (default: model if present, else 'config name' "
        "if present, else the first column that is not a data size); an id twice is an error",
    )
    p.add_argument("--where", help="keep rows where EXPR holds, e.g. 'method == \"lora\"'")
    p.add_argument("--holdout", help="rows where EXPR holds are held out and scored (Delta_h)")
    p.add_argument("--space", choices=("linear", "log"), default="linear")
    p.add_argument("--huber-delta", type=float, default=1e-3)
    p.add_argument("--bootstrap", type=int, default=0, metavar="N", help="bootstrap refits for CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="FITS.json", help="write the fits (with bootstrap samples)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ftscale.cli._common import print_json
    from ftscale.cli._laws_common import fmt_group, print_rows, write_json
    from ftscale.errors import UserError
    from ftscale.lawfit import fit_table
    from ftscale.textfmt import fmt_num

    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed must be an integer in [0, 2^32), got {args.seed}")
    if not 0 <= args.bootstrap <= 100_000:
        raise UserError(f"--bootstrap must be between 0 and 100000, got {args.bootstrap}")
    if args.out and Path(args.out).is_dir():
        raise UserError("--out names a folder; give a file name", path=args.out)
    roles = {"--factor": args.factor, "--data": args.data, "--target": args.target}
    given = [(flag, col) for flag, col in roles.items() if col is not None]
    for i, (flag, col) in enumerate(given):
        for other, col2 in given[i + 1 :]:
            if col == col2:
                raise UserError(f"{flag} and {other} name the same column {col!r}")
    group_by = [c.strip() for c in args.group_by.split(",") if c.strip()]
    # the other options are fit_frame's keywords of the same name
    names = ("law", "factor", "data", "target", "where", "holdout", "space", "huber_delta")
    names += ("id_col",)
    options = {name: getattr(args, name) for name in (*names, "bootstrap", "seed")}
    doc = fit_table(args.table, group_by=group_by, **options)
    if args.out:
        write_json(args.out, doc)
    slim = {
        **doc,
        "fits": [{k: v for k, v in f.items() if k != "bootstrap_params"} for f in doc["fits"]],
    }
    if args.json:
        print_json(slim)
        return 0
    rows = []
    for f in slim["fits"]:
        params = " ".join(f"{k}={fmt_num(v)}" for k, v in f["params"].items())
        rows.append(
            [
                fmt_group(f["group"]),
                f["law"] + (" *" if f.get("chosen") and len(slim["fits"]) > 1 else ""),
                params,
                f["n_fit"],
                f["n_holdout"],
                f["delta_e"],
                f["delta_h"],
                f.get("cv_error"),
                "yes" if f["converged"] else "NO",
                {True: "yes", False: "NO", None: "-"}[(f.get("health") or {}).get("extrapolates")],
            ]
        )
    print_rows(
        [
            "group",
            "law",
            "params",
            "n_fit",
            "n_hold",
            "delta_e",
            "delta_h",
            "cv_error",
            "converged",
            "extrapolates",
        ],
        rows,
    )
    for f in slim["fits"]:
        if f["ci"]:
            ci = " ".join(f"{k}=[{fmt_num(a)}, {fmt_num(b)}]" for k, (a, b) in f["ci"].items())
            print(f"95% CI {fmt_group(f['group'])}: {ci}")
        if not f["converged"]:
            print(f"warning: fit for {fmt_group(f['group'])} did not converge: {f['message']}")
    health = slim.get("health") or {}
    for flag in health.get("curves", []) + health.get("laws", []):
        print(f"health: {flag['message']}")
    if args.out:
        print(f"wrote {args.out}")
    return 0
