#!/usr/bin/env python3
"""Model selection and extrapolation from cheap runs, every method side by side.

For each table (wide or long, as ``ftscale select`` reads it) and each budget, every selection
method ranks the candidates from their losses at data sizes <= budget; the truth is each
candidate's measured loss at the target. Per budget and method:

- PearCorr = 100 x Pearson correlation of the method's predicted losses (its scores, for
  methods that only rank) with the true losses at the target, over all candidates;
- RelAcc = 100 x (worst true loss - true loss of the chosen candidate) / (worst - best).

Then the extrapolation check: each curve is fitted on its points <= --fit-upto and the larger
points up to the target are predicted; mean absolute error (nats/token) per law, ftscale's
rectified and power fits against the reference fit of Lin et al. (benchmarks/lin_reference.py)
on the same curves, with the CPU time of each.

    python benchmarks/bench_selection.py TABLE... [--target M] [--id-col C] [--budgets B,...]
        [--fit-upto N] [--methods a,b] [--no-extrapolation] [--json]
    python benchmarks/bench_selection.py --simulate 8 [--seed 0] [--kind all] ...   # simulated

Default budgets: every data size of the table from the third smallest up to target / 8;
default --fit-upto: target / 8.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ftscale.errors import UserError  # noqa: E402
from ftscale.laws.selection import METHODS, make_curve, select  # noqa: E402
from ftscale.laws.selection.simulate import simulate_pool  # noqa: E402


def pearcorr_relacc(pred: np.ndarray, truth: np.ndarray, chosen: int) -> tuple[float, float]:
    """(PearCorr, RelAcc) in percent, as the module docstring defines them."""
    if np.std(pred) == 0 or np.std(truth) == 0:
        pc = 0.0
    else:
        pc = 100.0 * float(np.corrcoef(pred, truth)[0, 1])
    worst, best = truth.max(), truth.min()
    ra = 100.0 * float((worst - truth[chosen]) / (worst - best)) if worst > best else 100.0
    return pc, ra


def load_tables(args) -> list[tuple[str, list]]:
    from ftscale.lawfit import read_candidates

    out = []
    for path in args.tables:
        out.append((Path(path).name, read_candidates(path, id_col=args.id_col)))
    kinds = ["easy", "hard", "steep"] if args.kind == "all" else [args.kind]
    for kind, i in ((k, i) for k in kinds for i in range(args.simulate)):
        rng = np.random.default_rng([args.seed, i, kinds.index(kind) if args.kind == "all" else 0])
        pool = simulate_pool(rng, hard=kind == "hard", steep=kind == "steep")
        curves = [
            make_curve(
                c["name"],
                c["sizes"],
                c["losses"],
                zero_shot=c["zero_shot"],
                size=c["size"],
                family=c["family"],
            )
            for c in pool
        ]
        out.append((f"sim-{kind}-{args.seed}-{i}", curves))
    return out


def selection_rows(name, curves, target, budgets, methods):
    truth_of = {}
    for c in curves:
        hit = np.flatnonzero(c.sizes == target)
        if hit.size:
            truth_of[c.name] = float(c.losses[hit[0]])
    cands = [c for c in curves if c.name in truth_of]
    rows = []
    for b in budgets:
        for m in methods:
            t0 = time.process_time()
            try:
                sel = select(cands, b, target, m)
            except UserError as exc:
                rows.append({"table": name, "budget": b, "method": m, "error": str(exc)})
                continue
            dt = time.process_time() - t0
            preds = {p["model"]: p for p in sel["predictions"]}
            names = [c.name for c in cands]
            score = np.array(
                [
                    preds[n]["predicted_loss"]
                    if preds[n]["predicted_loss"] is not None
                    else preds[n]["score"]
                    for n in names
                ],
                dtype=float,
            )
            score = np.where(np.isfinite(score), score, np.nanmax(score[np.isfinite(score)]))
            truth = np.array([truth_of[n] for n in names])
            pc, ra = pearcorr_relacc(score, truth, names.index(sel["best"]))
            rows.append(
                {
                    "table": name,
                    "budget": b,
                    "method": m,
                    "pearcorr": pc,
                    "relacc": ra,
                    "cpu_s": dt,
                }
            )
    return rows


def extrapolation_rows(name, curves, target, fit_upto):
    import lin_reference

    from ftscale.laws.registry import get_law

    errs = {"rectified": [], "power": [], "lin_reference": []}
    cpu = dict.fromkeys(errs, 0.0)
    for c in curves:
        keep = c.sizes <= fit_upto
        test = (c.sizes > fit_upto) & (c.sizes <= target)
        if keep.sum() < 4 or not test.any():
            continue
        D, L = c.sizes[keep], c.losses[keep]
        for law in ("rectified", "power"):
            t0 = time.process_time()
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = get_law(law)().fit(None, D, L)
            pred = f.predict(None, c.sizes[test])
            cpu[law] += time.process_time() - t0
            errs[law].extend(np.abs(pred - c.losses[test]))
        t0 = time.process_time()
        x, y = np.log(D), np.log(L)
        if c.zero_shot is not None:
            x, y = np.concatenate([[np.log(1e-10)], x]), np.concatenate([[np.log(c.zero_shot)], y])
        p = lin_reference.fit(x, y)
        cpu["lin_reference"] += time.process_time() - t0
        if p is None:
            pred = np.full(test.sum(), L[-1])
        else:
            pred = np.exp(lin_reference.predict_log(np.log(c.sizes[test]), *p))
        errs["lin_reference"].extend(np.abs(pred - c.losses[test]))
    return [
        {
            "table": name,
            "law": k,
            "mae": float(np.mean(v)) if v else None,
            "n": len(v),
            "cpu_s": cpu[k],
        }
        for k, v in errs.items()
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="*")
    ap.add_argument("--target", type=float, help="data size to predict (default: the largest)")
    ap.add_argument("--id-col", default="model")
    ap.add_argument("--budgets", help="comma-separated budgets (examples)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--fit-upto", type=float, help="extrapolation: fit up to (default target/8)")
    ap.add_argument("--no-extrapolation", action="store_true")
    ap.add_argument("--simulate", type=int, default=0, help="add N simulated benchmark pools")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--kind",
        default="all",
        choices=["easy", "hard", "steep", "all"],
        help="simulated pools: plateaus (easy), wide exponents and late plateaus (hard), long "
        "power phases with very different rates (steep), or all three",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    methods = args.methods.split(",")
    all_sel, all_ext = [], []
    for name, curves in load_tables(args):
        sizes = np.unique(np.concatenate([c.sizes for c in curves]))
        target = args.target or float(sizes.max())
        if args.budgets:
            budgets = [float(b) for b in args.budgets.split(",")]
        else:
            budgets = [float(s) for s in sizes[2:] if s <= target / 8]
        all_sel += selection_rows(name, curves, target, budgets, methods)
        if not args.no_extrapolation:
            all_ext += extrapolation_rows(name, curves, target, args.fit_upto or target / 8)
    if args.json:
        print(json.dumps({"selection": all_sel, "extrapolation": all_ext}))
        return 0
    print("| method | PearCorr (mean) | RelAcc (mean) | settings | errors | max CPU s per call |")
    print("|---|---|---|---|---|---|")
    for m in methods:
        ok = [r for r in all_sel if r["method"] == m and "error" not in r]
        bad = [r for r in all_sel if r["method"] == m and "error" in r]
        if not ok:
            print(f"| {m} | - | - | 0 | {len(bad)} | - |")
            continue
        print(
            f"| {m} | {np.mean([r['pearcorr'] for r in ok]):.1f} | "
            f"{np.mean([r['relacc'] for r in ok]):.1f} | {len(ok)} | {len(bad)} | "
            f"{max(r['cpu_s'] for r in ok):.2f} |"
        )
    tables = sorted({r["table"] for r in all_sel})
    print("\nPer table, PearCorr / RelAcc (mean over budgets):\n")
    print("| table | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for t in tables:
        cells = []
        for m in methods:
            ok = [r for r in all_sel if r["method"] == m and r["table"] == t and "error" not in r]
            cells.append(
                f"{np.mean([r['pearcorr'] for r in ok]):.1f} / "
                f"{np.mean([r['relacc'] for r in ok]):.1f}"
                if ok
                else "-"
            )
        print(f"| {t} | " + " | ".join(cells) + " |")
    if all_ext:
        print("\nExtrapolation, mean absolute error (nats/token) of the points beyond the fit:\n")
        laws = ["rectified", "power", "lin_reference"]
        print("| table | " + " | ".join(laws) + " | points |")
        print("|---" * (len(laws) + 2) + "|")
        for t in sorted({r["table"] for r in all_ext}):
            rows = {r["law"]: r for r in all_ext if r["table"] == t}
            cells = ["-" if rows[k]["mae"] is None else f"{rows[k]['mae']:.4f}" for k in laws]
            print(f"| {t} | " + " | ".join(cells) + f" | {rows['rectified']['n']} |")
        for k in laws:
            v = [r["mae"] for r in all_ext if r["law"] == k and r["mae"] is not None]
            c = sum(r["cpu_s"] for r in all_ext if r["law"] == k)
            print(f"mean {k}: {np.mean(v):.4f} nats over {len(v)} tables, {c:.1f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
