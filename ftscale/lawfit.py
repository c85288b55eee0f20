"""Scaling-law fitting over results tables: the glue between :mod:`ftscale.tables` (pandas) and
:mod:`ftscale.laws` (numpy/scipy only). The ``fit``, ``select`` and ``demo`` commands and the
report stage call these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ftscale import tables
from ftscale.analysis.fit import FitOptions, fit_group, fits_document
from ftscale.errors import UserError
from ftscale.laws.registry import get_law
from ftscale.schema import COST_COLUMNS


def _points(df: pd.DataFrame, factor: str | None, data: str, target: str) -> pd.DataFrame:
    """Average runs that share (factor, data size): the paper fits each point as the mean of its
    seeds. Cost columns are averaged too."""
    keys = [c for c in (factor, data) if c]
    cols = [target] + [c for c in COST_COLUMNS if c in df.columns]
    num = df[keys + cols].copy()
    for c in cols[1:]:
        num[c] = pd.to_numeric(num[c], errors="coerce")
    return num.groupby(keys, sort=True, as_index=False).mean()


def fit_frame(
    df: pd.DataFrame,
    *,
    law: str,
    factor: str | None = None,
    data: str = "data_size",
    target: str = "loss",
    group_by: list[str] | None = None,
    where: str | None = None,
    holdout: str | None = None,
    space: str = "linear",
    huber_delta: float = 1e-3,
    bootstrap: int = 0,
    seed: int = 0,
    path: str | None = None,
    fixed: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Fit ``law`` per group of a long results table; returns the fits document
    ``{"ftscale_fits": 1, "source", "fits": [record], "notes"}`` (records:
    :func:`ftscale.laws.io.fit_record`; fitting policy: :mod:`ftscale.analysis.fit`). A table
    where no group could be fitted is a :class:`UserError` (a fits file needs a fit).
    """
    cls = get_law(law)
    if space not in ("linear", "log"):
        raise UserError(f"--space must be linear or log, not {space!r}")
    if not huber_delta > 0:
        raise UserError(f"--huber-delta must be positive, got {huber_delta}")
    if bootstrap < 0:
        raise UserError(f"--bootstrap must be >= 0, got {bootstrap}")
    if cls.n_factors == 2 and not factor:
        raise UserError(f"the {law} law needs --factor (e.g. model_size)")
    if cls.n_factors == 1:
        factor = None
    group_by = list(group_by or [])
    sizes = tuple(c for c in (factor, data) if c)
    for c in (*sizes, target, *group_by):
        if c not in df.columns:
            have = ", ".join(x for x in df.columns if x != tables.ROW)
            raise UserError(f"missing column {c!r} (columns: {have})", path=path)
    if where:
        df = df[tables.where(df, where, path)]
        if df.empty:
            raise UserError(f"no rows satisfy --where {where!r}", path=path)
    df = tables.validate(df, path, sizes=sizes, losses=(target,))
    held = tables.where(df, holdout, path) if holdout else pd.Series(False, index=df.index)
    if holdout and held.all():
        raise UserError(f"--holdout {holdout!r} removes every point", path=path)
    options = FitOptions(space=space, huber_delta=huber_delta, bootstrap=bootstrap, seed=seed)
    fits, notes = [], []
    for group, sub in tables.group_by(df, group_by):
        h = held.loc[sub.index]
        label = ", ".join(f"{k}={v}" for k, v in group.items()) or "all rows"
        if h.all():
            raise UserError(f"group {label}: empty after --holdout", path=path)
        # held-out rows are averaged on their own: a held-out seed never joins a fitted point
        fit_pts, hold_pts = (
            _points(sub[~h], factor, data, target),
            _points(sub[h], factor, data, target),
        )
        points = pd.concat([fit_pts, hold_pts], ignore_index=True)
        mask = np.arange(len(points)) >= len(fit_pts)
        record, why = fit_group(
            law,
            points,
            mask,
            group=group,
            factor=factor,
            data=data,
            target=target,
            options=options,
            fixed=fixed,
            label=f"group {label}",
        )
        notes += why
        if record is not None:
            fits.append(record)
    if not fits:
        raise UserError(notes[0] if notes else "nothing to fit", path=path)
    return fits_document(fits, notes, source=path)


def fit_table(path: str, **kwargs) -> dict[str, Any]:
    """:func:`fit_frame` on the table read from ``path`` (CSV/TSV, Parquet, JSONL)."""
    return fit_frame(tables.read_table(path), path=path, **kwargs)


def read_curves(
    path: str, *, id_col: str = "model", data: str = "data_size", target: str = "loss"
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Candidate curves for model selection: model -> (data sizes, mean losses).

    Wide tables have one row per model and one column per data size (a header that is an
    integer); other columns are ignored. Long tables have ``id_col``, ``data`` and ``target``.
    """
    df = tables.read_table(path)
    if id_col not in df.columns:
        raise UserError(f"missing column {id_col!r} (the model id; see --id-col)", path=path)
    size_cols = [c for c in df.columns if str(c).strip().isdigit()]
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if size_cols:
        sizes = np.array([float(str(c).strip()) for c in size_cols])
        if np.any(sizes <= 0):
            raise UserError("data-size column headers must be positive integers", path=path)
        for _, row in df.iterrows():
            vals = pd.to_numeric(row[size_cols], errors="coerce").to_numpy(dtype=float)
            raw = row[size_cols].to_numpy()
            for v, r, c in zip(vals, raw, size_cols, strict=True):
                present = not (
                    r is None or (isinstance(r, float) and np.isnan(r)) or str(r).strip() == ""
                )
                if present and not np.isfinite(v):
                    raise UserError(
                        f"loss in column {c!r} must be a finite number, got {r!r}",
                        path=path,
                        line=int(row[tables.ROW]),
                    )
            ok = np.isfinite(vals)
            name = str(row[id_col])
            if name in curves:
                raise UserError(
                    f"model {name!r} appears twice", path=path, line=int(row[tables.ROW])
                )
            curves[name] = (sizes[ok], vals[ok])
        return curves
    df = tables.validate(df, path, required=(id_col,), sizes=(data,), losses=(target,))
    for name, sub in df.groupby(id_col, sort=True):
        pts = sub.groupby(data, as_index=False)[target].mean()
        curves[str(name)] = (pts[data].to_numpy(), pts[target].to_numpy())
    return curves
