#!/usr/bin/env python3
"""Wide selection tables from the development study's results (issue 12).

    ftscale study run benchmarks/data/selection_dev.toml --store S.db --workers 2
    ftscale study export benchmarks/data/selection_dev.toml --store S.db --out runs.csv
    python scripts/selection_dev_tables.py runs.csv --out-dir benchmarks/data

One table per task, ``selection_dev_<task>.csv``: a row per candidate (``config name`` =
model/method), ``size`` (parameters), ``family`` (the finetuning method: candidates of one method
learn alike), ``pretrain_tokens``, ``0`` (the base model's zero-shot test loss) and one column
per data size with the test loss (nats/token) averaged over the seeds; ``seeds`` says over how
many. Only finished runs count.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="the study's exported long results table (CSV)")
    ap.add_argument("--out-dir", default="benchmarks/data")
    args = ap.parse_args()
    df = pd.read_csv(args.results)
    if "status" in df.columns:
        df = df[df["status"] == "done"]
    df = df.assign(candidate=df["model"] + "/" + df["method"])
    for task, sub in df.groupby("task", sort=True):
        wide = sub.pivot_table(
            index="candidate", columns="data_size", values="loss", aggfunc="mean"
        )
        wide.columns = [str(int(c)) for c in wide.columns]
        first = sub.groupby("candidate").first()
        meta = pd.DataFrame(
            {
                "size": first["model_size"],
                "family": first["method"],
                "pretrain_tokens": first["pretrain_tokens"],
                "seeds": sub.groupby("candidate")["seed"].nunique(),
                "0": sub.groupby("candidate")["zero_shot_loss"].mean(),
            }
        )
        table = meta.join(wide).reset_index().rename(columns={"candidate": "config name"})
        out = Path(args.out_dir) / f"selection_dev_{task}.csv"
        table.to_csv(out, index=False, float_format="%.5f")
        print(f"wrote {out}: {len(table)} candidates, sizes {list(wide.columns)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
