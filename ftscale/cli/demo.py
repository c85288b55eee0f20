"""``ftscale demo``: the interim main job. Runs the law engine on the shipped SIMULATED table.

Until the study engine exists (issue 6 replaces this), the demo fits the multiplicative and
additive laws per method to ``examples/paper_en_de_simulated.csv`` (losses simulated from the
paper's Table 4 En-De values plus noise: NOT measurements), holding out the largest model and
the largest data size of each method, and reports parameters, Delta_e / Delta_h, critical data
sizes between method pairs and a recommendation. Fits go to ``DIR`` (default runs/demo).
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "paper_en_de_simulated.csv"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="interim demo: the law engine on a shipped simulated table",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="output folder (runs/demo)")
    p.add_argument("--table", default=str(EXAMPLE), help=argparse.SUPPRESS)
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits per fit (200)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from ftscale import tables
    from ftscale.cli._common import print_json, to_json_text
    from ftscale.cli._laws_common import fmt_num, print_rows
    from ftscale.fsutil import atomic_dir
    from ftscale.lawfit import fit_frame
    from ftscale.laws.methods import critical_pairs, recommend_from_fits

    t0 = time.perf_counter()
    df = tables.read_table(args.table)
    # Hold out what the paper holds out: the largest model, and each method's largest data size.
    biggest = df["model_size"].max()
    parts = [f"model_size >= {float(biggest):g}"]
    for m, dmax in df.groupby("method")["data_size"].max().items():
        parts.append(f'(method == "{m}" and data_size >= {float(dmax):g})')
    holdout = " or ".join(parts)
    laws = ("multiplicative", "additive")
    docs = {}
    for law in laws:
        docs[law] = fit_frame(
            df,
            law=law,
            factor="model_size",
            group_by=["task", "method"],
            holdout=holdout,
            bootstrap=args.bootstrap,
            seed=0,
            path=args.table,
        )
    out_dir = Path(args.out)
    with atomic_dir(out_dir) as tmp:
        for law, doc in docs.items():
            (tmp / f"fits_{law}.json").write_text(to_json_text(doc), encoding="utf-8")
        fits_path = {law: str(tmp / f"fits_{law}.json") for law in laws}
        methods = sorted(df["method"].unique())
        sizes = sorted(float(v) for v in df["model_size"].unique())
        critical = critical_pairs(fits_path["multiplicative"], methods=methods, at=sizes)
        rec = recommend_from_fits(fits_path["multiplicative"], x=float(biggest), data_size=1e5)
        summary = {
            "simulated": True,
            "table": str(args.table),
            "note": "SIMULATED losses from the paper's Table 4 En-De values plus noise, not measurements",
            "holdout": holdout,
            "fits": {
                law: [{k: v for k, v in f.items() if k != "bootstrap_params"} for f in doc["fits"]]
                for law, doc in docs.items()
            },
            "critical": critical,
            "recommendation": rec,
            "out": str(out_dir),
        }
        (tmp / "summary.json").write_text(to_json_text(summary), encoding="utf-8")
    summary["seconds"] = time.perf_counter() - t0
    if args.json:
        print_json(summary)
        return 0
    print("ftscale demo -- law engine on SIMULATED data (paper Table 4 En-De values + noise;")
    print(f"not measurements): {args.table}")
    print(f"held out: {holdout}\n")
    rows = []
    for law in laws:
        for f in summary["fits"][law]:
            p = " ".join(f"{k}={fmt_num(v)}" for k, v in f["params"].items())
            rows.append(
                [
                    f["group"]["method"],
                    law,
                    p,
                    f["n_fit"],
                    f["n_holdout"],
                    f["delta_e"],
                    f["delta_h"],
                    "yes" if f["converged"] else "NO",
                ]
            )
    print_rows(
        ["method", "law", "params", "n_fit", "n_hold", "delta_e", "delta_h", "converged"], rows
    )
    for law in laws:
        for f in summary["fits"][law]:
            if not f["converged"]:
                print(
                    f"warning: {law} fit for {f['group']['method']} did not converge "
                    f"({f['message']}); its parameters are not reliable"
                )
    print("\ncritical data size (multiplicative fits), examples:")
    crow = []
    for pair in critical["pairs"]:
        cf = pair["closed_form"]
        for pt in pair["points"]:
            crow.append(
                [
                    " vs ".join(pair["methods"]),
                    fmt_num(pt["x"]),
                    fmt_num(pt["critical_data_size"]) if pt["critical_data_size"] else pt["note"],
                    "-" if cf is None else fmt_num(cf["gamma"]),
                ]
            )
    print_rows(["methods", "model_size", "critical_data_size", "gamma"], crow)
    r = rec["recommendations"][0]
    print(f"\nrecommendation at model_size={fmt_num(r['x'])}, data_size={fmt_num(r['data_size'])}:")
    for i, row in enumerate(r["ranking"], start=1):
        iv = row["interval"]
        ivs = "" if iv is None else f"  95% [{fmt_num(iv[0])}, {fmt_num(iv[1])}]"
        print(f"  {i}. {row['method']}: {fmt_num(row['predicted_loss'])} nats/token{ivs}")
    flips = ", ".join(f"{fmt_num(f['data_size'])} ({f['from']}->{f['to']})" for f in r["flips"])
    print(f"  ranking flips at data size: {flips or 'none in range'}")
    ch = r["cheapest_within_tolerance"]
    if ch:
        print(
            f"  cheapest within {r['tolerance']} nats/token of the best: {ch['method']} "
            f"({r['cost_column']} {fmt_num(ch['cost'])})"
        )
    print(
        f"\nwrote {out_dir}/fits_multiplicative.json, fits_additive.json, summary.json "
        f"({summary['seconds']:.1f} s)"
    )
    return 0
