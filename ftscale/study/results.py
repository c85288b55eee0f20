"""The study's results table: one row per planned run in the project's column vocabulary
(``ftscale.schema``) plus ``run_key`` and ``status``, and the seed-averaged points the laws fit."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ftscale.schema import ALL_COLUMNS, CORE_COLUMNS
from ftscale.study.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

_SPEC_FIELDS = ("task", "method", "model", "pet_size", "data_size", "seed")


def results_rows(store: RunStore, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows for every stored run (or those of ``keys``): the record's columns where the run
    finished, the plan's fields otherwise."""
    rows = []
    for run in store.runs(keys):
        row: dict[str, Any] = dict.fromkeys(ALL_COLUMNS)
        for f in _SPEC_FIELDS:
            row[f] = run.spec.get(f)
        if run.record:
            for k, v in run.record.items():
                if k in row:
                    row[k] = v
        if run.status != "done":
            # Never let a failed or diverged run's numbers pass for a result.
            row["loss"] = row["dev_loss"] = None
            row["forget_loss"] = row["forgetting"] = None
        row["run_key"] = run.run_key
        row["status"] = run.status
        rows.append(row)
    return rows


def results_frame(store: RunStore, keys: list[str] | None = None) -> pd.DataFrame:
    """:func:`results_rows` as a DataFrame with the schema's column order."""
    import pandas as pd

    rows = results_rows(store, keys)
    df = pd.DataFrame(rows, columns=list(ALL_COLUMNS))
    # Drop extra columns that no run filled, but keep the core vocabulary always.
    keep = [
        c
        for c in df.columns
        if c in CORE_COLUMNS or c in ("run_key", "status") or df[c].notna().any()
    ]
    return df[keep]


def points_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Average finished runs over seeds: one row per (task, method, model, pet_size, data_size),
    as the paper averages 3 runs on different random subsets per point. ``n_seeds`` counts the
    runs averaged; ``loss_std`` is their standard deviation (nats/token)."""
    import pandas as pd

    done = df[(df["status"] == "done") & df["loss"].notna()].copy()
    if done.empty:
        return done.assign(n_seeds=pd.Series(dtype=int), loss_std=pd.Series(dtype=float))
    keys = ["task", "method", "model", "pet_size", "data_size"]
    done["pet_size"] = done["pet_size"].fillna(-1)
    num = [
        c
        for c in done.columns
        if c not in keys + ["seed", "run_key", "status"] and pd.api.types.is_numeric_dtype(done[c])
    ]
    g = done.groupby(keys, sort=True)
    out = g[num].mean().reset_index()
    out["n_seeds"] = g.size().values
    out["loss_std"] = g["loss"].std(ddof=0).values
    out["pet_size"] = out["pet_size"].where(out["pet_size"] >= 0, None)
    return out


def finite(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)
