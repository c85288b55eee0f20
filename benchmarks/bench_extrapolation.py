#!/usr/bin/env python3
"""Extrapolation from the small-data end of a curve, as a finetuning benchmark measures it:
``ftscale fit`` on a wide table against Lin et al.'s reference fit, in one invocation.

Each table is wide (one row per model, integer headers data sizes, ``0`` the zero-shot loss),
as ``ftscale fit`` reads it (:func:`ftscale.lawfit.fit_frame`, one fit per row); every model is
fitted on its points <= --fit-upto (default: the largest size / 8) and predicts the larger
ones. Per table and variant: the mean absolute error (nats/token) over all held-out points,
and the CPU seconds. Variants are ``LAW`` (the wide table as it is, the zero-shot column
included where the law has a pre-learned data size) and ``LAW-0`` (``--where "data_size >
0"``: without the zero-shot column), ``LAW:log`` the same with ``--space log``, ``auto``
being ``--law auto``'s chosen fit per model;
``lin_reference`` is the re-implementation of Lin et al.'s ``fit_our_law``
(benchmarks/lin_reference.py; with the zero-shot point, as their code fits it).

Tables: the CSVs given (the project's own finetuning curves:
benchmarks/data/selection_dev_*.csv, sizes 12..1,536), and with ``--simulate N`` N
benchmark-like pools of each kind of :func:`ftscale.laws.selection.simulate.simulate_pool`
(30 models, sizes 200..1,638,400, fitted <= 204,800) plus ``sim-zs-off``: the first 40 curves
of each kind with the zero-shot loss raised by 2-15 % (the simulator puts it exactly on the
rectified curve; real curves often drop below it in the first steps, as the dev CSVs do).

    python benchmarks/bench_extrapolation.py [TABLE...] [--simulate N] [--seed S]
        [--variants rectified,rectified-0,...] [--fit-upto N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ftscale.laws.selection.simulate import simulate_pool  # noqa: E402

DEFAULT_VARIANTS = (
    "rectified",
    "rectified-0",
    "rectified:log",
    "rectified:log-0",
    "rectified_power",
    "rectified_power-0",
    "auto",
    "lin_reference",
)
KINDS = ("easy", "hard", "steep")


def wide_frame(curves: list[tuple[str, np.ndarray, np.ndarray, float | None]]) -> pd.DataFrame:
    """A wide table (``model``, ``0``, one column per size) from (name, sizes, losses, zero)."""
    rows = []
    for name, D, L, z in curves:
        row = {"model": name, "0": z}
        row.update({str(int(d)): float(v) for d, v in zip(D, L, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows)


def load(args) -> list[tuple[str, pd.DataFrame, float]]:
    """(name, wide frame, fit-upto) per table."""
    from ftscale import tables

    out = []
    for path in args.tables:
        df = tables.read_table(path)
        sizes = [int(c) for c in df.columns if str(c).isdigit() and int(c) > 0]
        out.append((Path(path).stem, df, args.fit_upto or max(sizes) / 8))
    off = []
    for k, kind in enumerate(KINDS):
        curves = []
        for i in range(args.simulate):
            rng = np.random.default_rng([args.seed, i, k])
            pool = simulate_pool(rng, hard=kind == "hard", steep=kind == "steep")
            curves += [
                (f"{kind}{i}-{c['name']}", c["sizes"], c["losses"], c["zero_shot"]) for c in pool
            ]
        if not curves:
            continue
        out.append((f"sim-{kind}", wide_frame(curves), args.fit_upto or 204800.0))
        rng = np.random.default_rng([args.seed, 99, k])
        off += [(n, D, L, z * float(np.exp(rng.uniform(0.02, 0.15)))) for n, D, L, z in curves[:40]]
    if off:
        out.append(("sim-zs-off", wide_frame(off), args.fit_upto or 204800.0))
    return out


def ours(df: pd.DataFrame, variant: str, upto: float) -> list[float]:
    """|observed - predicted| of every held-out point of ``fit_frame`` on the wide ``df``."""
    from ftscale.lawfit import fit_frame

    law, no_zero = (variant[:-2], True) if variant.endswith("-0") else (variant, False)
    law, _, space = law.partition(":")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        doc = fit_frame(
            df,
            law=law,
            space=space or "linear",
            holdout=f"data_size > {upto}",
            where="data_size > 0" if no_zero else None,
        )
    errs = []
    for f in doc["fits"]:
        if f.get("chosen", True):
            errs += [abs(p["observed"] - p["predicted"]) for p in f["heldout_points"]]
    return errs


def reference(df: pd.DataFrame, upto: float) -> list[float]:
    """The same errors for lin_reference, fitted per model with its zero-shot point."""
    import lin_reference

    from ftscale.lawfit import wide_id_col, wide_to_long

    long = wide_to_long(df, id_col=wide_id_col(df.columns))
    errs = []
    for _, sub in long.groupby(wide_id_col(df.columns), sort=False):
        sizes, losses = sub["data_size"].to_numpy(float), sub["loss"].to_numpy(float)
        fit, test = (sizes > 0) & (sizes <= upto), sizes > upto
        x, y = np.log(sizes[fit]), np.log(losses[fit])
        if (sizes == 0).any():
            x = np.concatenate([[np.log(1e-10)], x])
            y = np.concatenate([[np.log(losses[sizes == 0][0])], y])
        p = lin_reference.fit(x, y)
        pred = (
            np.full(test.sum(), losses[fit][-1])
            if p is None
            else np.exp(lin_reference.predict_log(np.log(sizes[test]), *p))
        )
        errs += list(np.abs(pred - losses[test]))
    return errs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="*")
    ap.add_argument("--simulate", type=int, default=0, help="N simulated pools of each kind")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    ap.add_argument("--fit-upto", type=float)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    variants = args.variants.split(",")
    rows = []
    for name, df, upto in load(args):
        for v in variants:
            t0 = time.process_time()
            errs = reference(df, upto) if v == "lin_reference" else ours(df, v, upto)
            rows.append(
                {
                    "table": name,
                    "variant": v,
                    "mae": float(np.mean(errs)),
                    "n_points": len(errs),
                    "cpu_s": time.process_time() - t0,
                }
            )
            if not args.json:
                print(
                    f"# {name} {v}: {rows[-1]['mae']:.4f} ({rows[-1]['cpu_s']:.0f} s)", flush=True
                )
    if args.json:
        print(json.dumps({"extrapolation": rows}))
        return 0
    print("\nMean absolute error (nats/token) of the held-out points; CPU s in the last row:\n")
    print("| table | " + " | ".join(variants) + " |")
    print("|---" * (len(variants) + 1) + "|")
    for t in dict.fromkeys(r["table"] for r in rows):
        cells = {r["variant"]: r for r in rows if r["table"] == t}
        print(f"| {t} | " + " | ".join(f"{cells[v]['mae']:.4f}" for v in variants) + " |")
    cpu = [sum(r["cpu_s"] for r in rows if r["variant"] == v) for v in variants]
    print("| CPU s | " + " | ".join(f"{c:.0f}" for c in cpu) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
