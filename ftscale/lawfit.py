"""Scaling-law fitting over results tables: the glue between :mod:`ftscale.tables` (pandas) and
:mod:`ftscale.laws` (numpy/scipy only). The ``fit``, ``select`` and ``demo`` commands and the
report stage call these functions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ftscale import tables
from ftscale.analysis.calibrate import choose
from ftscale.analysis.covariates import applicable
from ftscale.analysis.fit import FitOptions, fit_group, fits_document
from ftscale.analysis.health import curve_health, law_message
from ftscale.errors import UserError
from ftscale.laws.covariate import ZERO_SHOT
from ftscale.laws.registry import LAWS, expand_laws, get_law
from ftscale.schema import COST_COLUMNS

#: Targets that are expected to grow with data (``ftscale.finetune.forget``): no "curve rises
#: with data" health flag for them.
RISING_TARGETS = ("forgetting", "forget_loss")


def _points(df: pd.DataFrame, factor: str | None, data: str, target: str) -> pd.DataFrame:
    """Average runs that share (factor, data size): the paper fits each point as the mean of its
    seeds. Cost columns and the zero-shot loss (a covariate law's factor) are averaged too;
    ``loss_std`` is the (population) standard deviation
    of the runs' ``target`` values (nats/token) and ``n_seeds`` their number, as a study's
    points carry them."""
    keys = [c for c in (factor, data) if c]
    extra = (*COST_COLUMNS, ZERO_SHOT)
    cols = [target] + [c for c in extra if c in df.columns and c != target]
    num = df[keys + cols].copy()
    for c in cols[1:]:
        num[c] = pd.to_numeric(num[c], errors="coerce")
    g = num.groupby(keys, sort=True)
    out = g[cols].mean().reset_index()
    out["loss_std"] = g[target].std(ddof=0).to_numpy()
    out["n_seeds"] = g.size().to_numpy()
    return out


def _curve_label(group: dict[str, Any], factor: str | None, ident: dict[str, Any]) -> str:
    where = ", ".join(f"{k}={v}" for k, v in group.items()) or "all rows"
    return f"group {where}" + (f" at {factor}={ident[factor]:g}" if factor in ident else "")


def _law_flag(record: dict[str, Any], label: str) -> dict[str, Any]:
    return {
        "group": record["group"],
        "law": record["law"],
        **record["health"],
        "message": law_message(f"{label} ({record['law']} law)", record["health"]),
    }


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
    id_col: str | None = None,
) -> dict[str, Any]:
    """Fit ``law`` per group of a long results table (``law`` "auto": every law of the
    registry with the right number of factors, each group's choice by cross-validated
    extrapolation error marked ``"chosen": true``: :func:`ftscale.analysis.calibrate.choose`;
    ``data`` 0 rows, the zero-shot loss, go to the laws with a pre-learned data size and are
    left out of the others); returns the fits document
    ``{"ftscale_fits": 1, "source", "health", "fits": [record], "notes"}`` (records:
    :func:`ftscale.laws.io.fit_record`; fitting policy: :mod:`ftscale.analysis.fit`). A table
    where no group could be fitted is a :class:`UserError` (a fits file needs a fit).

    ``health``: ``{"curves": [...], "laws": [...]}``, the group's curves (one per factor value)
    that rise with data by more than their seed spread
    (:func:`ftscale.analysis.health.curve_health` over the seed means of all the group's rows,
    each with its ``group``) and the fits that do not extrapolate (their ``health`` with
    ``group``, ``law`` and ``message``).

    A wide table (no ``data`` column, integer column headers: :func:`wide_to_long`) is fitted
    in its long form: one fit per row (grouped by ``id_col``, default :func:`wide_id_col`)
    unless ``group_by`` is given; its ``0`` column (the zero-shot loss) is left out, with a
    note, when no law asked for has a pre-learned data size. ``id_col`` is for wide tables only.
    """
    pre_notes: list[str] = []
    if data not in df.columns and any(
        _size_header(c) is not None for c in df.columns if c != tables.ROW
    ):
        id_col = id_col or wide_id_col(df.columns)
        if id_col is None or id_col not in df.columns:
            have = ", ".join(repr(str(c)) for c in df.columns if c != tables.ROW)
            raise UserError(
                f"missing id column {id_col!r} of the wide table (--id-col; columns: {have})",
                path=path,
            )
        if target in df.columns:
            raise UserError(
                f"a wide table (integer column headers are data sizes) cannot also have the "
                f"target column {target!r}",
                path=path,
            )
        df = wide_to_long(df, id_col=id_col, data=data, target=target, path=path)
        group_by = list(group_by or [id_col])
        pre_notes.append(
            f"wide table: {df[id_col].nunique()} rows, {df[data].nunique()} data sizes "
            f"(column headers), one fit per "
            + (repr(id_col) if group_by == [id_col] else "group of " + ", ".join(group_by))
        )
    elif id_col is not None:
        raise UserError(
            f"--id-col {id_col!r} is for wide tables (integer column headers); this table has "
            f"a {data!r} column",
            path=path,
        )
    names = expand_laws([law], 2 if factor else 1)
    classes = [get_law(n) for n in names]
    if space not in ("linear", "log"):
        raise UserError(f"--space must be linear or log, not {space!r}")
    if not huber_delta > 0:
        raise UserError(f"--huber-delta must be positive, got {huber_delta}")
    if bootstrap < 0:
        raise UserError(f"--bootstrap must be >= 0, got {bootstrap}")
    if classes[0].n_factors == 2 and not factor:
        raise UserError(f"the {law} law needs --factor (e.g. model_size)")
    if classes[0].n_factors == 1:
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
    # data size 0 is the zero-shot loss: valid for the laws with a pre-learned data size
    df = tables.validate(df, path, sizes=sizes[:-1], losses=(target, data))
    bad = ~(df[data] >= 0)
    if bad.any():
        row = df.loc[bad].iloc[0]
        raise UserError(
            f"size column {data!r} must be non-negative, got {row[data]!r}",
            path=path,
            line=int(row[tables.ROW]) if tables.ROW in df.columns else None,
        )
    if pre_notes and (df[data] == 0).any() and not any(c.accepts_zero_data for c in classes):
        # a wide table's zero-shot column is part of the table, not a choice of the user's
        df = df[df[data] > 0]
        pre_notes.append(
            f"column '0' (zero-shot losses) left out: the {law} law has no pre-learned data size"
        )
    if (df[data] == 0).any() and not any(c.accepts_zero_data for c in classes):
        row = df.loc[df[data] == 0].iloc[0]
        raise UserError(
            f"{data} 0 (a zero-shot point) needs a law with a pre-learned data size "
            f"({', '.join(k for k, c in LAWS.items() if c.accepts_zero_data)}); the {law} law "
            "has none",
            path=path,
            line=int(row[tables.ROW]) if tables.ROW in df.columns else None,
        )
    held = tables.where(df, holdout, path) if holdout else pd.Series(False, index=df.index)
    if holdout and held.all():
        raise UserError(f"--holdout {holdout!r} removes every point", path=path)
    options = FitOptions(space=space, huber_delta=huber_delta, bootstrap=bootstrap, seed=seed)
    fits, notes = [], pre_notes
    health: dict[str, list[dict[str, Any]]] = {"curves": [], "laws": []}
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
        bad = fit_pts[target] <= 0
        if bad.any():
            # every law here predicts a positive value (its terms are positive): a target that
            # is <= 0 at some fitted point (``forgetting`` when the model got better at general
            # text) cannot be fitted; ``forget_loss`` is always positive
            v = float(fit_pts[target][bad].iloc[0])
            notes.append(
                f"group {label}: not fitted, {target} is <= 0 at {int(bad.sum())} of "
                f"{len(fit_pts)} seed-mean points (e.g. {v:.4g}); the laws predict positive "
                "values" + ("; fit --target forget_loss instead" if target == "forgetting" else "")
            )
            continue
        points = pd.concat([fit_pts, hold_pts], ignore_index=True)
        mask = np.arange(len(points)) >= len(fit_pts)
        records = []
        for name, cls in zip(names, classes, strict=True):
            if law == "auto" and not applicable(
                cls, points, factor=factor, data=data, target=target
            ):
                continue  # a covariate law where the table does not measure it
            # a law without D_l leaves the zero-shot points (data size 0) out
            keep = (points[data] > 0).to_numpy() | cls.accepts_zero_data
            rec, why = fit_group(
                name,
                points[keep].reset_index(drop=True),
                mask[keep],
                group=group,
                factor=factor,
                data=data,
                target=target,
                options=options,
                fixed=fixed,
                label=f"group {label}" + (f" ({name} law)" if len(names) > 1 else ""),
            )
            notes += why
            if rec is not None:
                records.append(rec)
        choose(records)
        curve_keys = [factor] if factor else []
        # a loss that rises with data is a defect; forgetting is expected to (RISING_TARGETS)
        for c in (
            []
            if target in RISING_TARGETS
            else curve_health(
                _points(sub, factor, data, target).to_dict("records"),
                curve_keys,
                data=data,
                target=target,
                describe=lambda ident, group=group: _curve_label(group, factor, ident),
            )
        ):
            health["curves"].append({"group": group, **c})
        for record in records:
            fits.append(record)
            if record["health"]["extrapolates"] is False:
                health["laws"].append(_law_flag(record, f"group {label}"))
    if not fits:
        raise UserError(notes[0] if notes else "nothing to fit", path=path)
    return fits_document(fits, notes, source=path, health=health)


def fit_table(path: str, **kwargs) -> dict[str, Any]:
    """:func:`fit_frame` on the table read from ``path`` (CSV/TSV, Parquet, JSONL)."""
    return fit_frame(tables.read_table(path), path=path, **kwargs)


def _size_header(col: Any) -> float | None:
    """The data size a wide table's column header names (examples), or None for a covariate."""
    text = str(col).strip().lstrip("+")
    return float(text) if text.isdigit() else None


_SIZE_COLS = ("size", "model_size")
_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def _parse_count(v: Any) -> float | None:
    """A parameter count from a number or text such as ``1.3e9``, ``350M``, ``7B``; None when it
    is none (not positive and finite, or not a count at all)."""
    text = str(v).strip().replace(",", "").replace("_", "")
    mult = 1.0
    if text and text[-1].lower() in _SUFFIX:
        mult, text = _SUFFIX[text[-1].lower()], text[:-1]
    try:
        num = float(text) * mult
    except ValueError:
        return None
    return num if np.isfinite(num) and num > 0 else None


_FAMILY_COLS = ("family",)


def _covariates(row: pd.Series, cols: list, path: str) -> dict[str, Any]:
    """``size`` / ``family`` and the other columns of one candidate's row."""
    out: dict[str, Any] = {"meta": {}}
    for c in cols:
        v = row[c]
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        name = str(c).strip()
        if name in _SIZE_COLS and "size" not in out:
            num = _parse_count(v)
            if num is None:
                # Not a number of parameters: kept as metadata; only model-size needs it.
                out["meta"][name] = v.item() if hasattr(v, "item") else v
            else:
                out["size"] = num
        elif name in _FAMILY_COLS:
            out["family"] = str(v)
        else:
            out["meta"][name] = v.item() if hasattr(v, "item") else v
    return out


def wide_id_col(columns: Any) -> str | None:
    """The id column of a wide table when none is named: ``model`` if present, else
    ``config name`` (as published benchmark tables name it), else the first column that is not a
    data size; None when every column is one."""
    names = [c for c in columns if c != tables.ROW]
    for want in ("model", "config name"):
        if want in names:
            return want
    rest = [c for c in names if _size_header(c) is None]
    return rest[0] if rest else None


def wide_to_long(
    df: pd.DataFrame,
    *,
    id_col: str | None,
    data: str = "data_size",
    target: str = "loss",
    path: str | None = None,
) -> pd.DataFrame | None:
    """The long form of a wide table (one row per candidate, every column whose header is a
    non-negative integer a data size in examples, its cells losses in nats/token, ``0`` the
    zero-shot loss), or None when ``df`` has no such column: one row per (candidate, size
    column) with ``data`` = the header and ``target`` = the cell, empty cells left out, the
    other columns (``id_col`` among them) kept as they are, and the candidate's line in
    ``tables.ROW`` (columns named ``data`` or ``target`` are replaced). A candidate id twice or
    a loss that is not a positive number is a :class:`UserError` naming the line."""
    sizes = {c: _size_header(c) for c in df.columns if c not in (id_col, tables.ROW)}
    size_cols = [c for c, v in sizes.items() if v is not None]
    if not size_cols:
        return None
    df = df.reset_index(drop=True)
    other = [c for c in df.columns if c not in size_cols and c not in (data, target)]
    lines = df[tables.ROW] if tables.ROW in df.columns else pd.Series(range(len(df)), df.index)
    names = df[id_col].astype(str).str.strip()
    twice = names.duplicated()
    if twice.any():
        i = twice.idxmax()
        raise UserError(
            f"{id_col} {names[i]!r} appears twice (a wide table has one row per model; "
            "--id-col names the id column)",
            path=path,
            line=int(lines[i]),
        )
    values = df[size_cols]
    empty = values.isna() | values.map(lambda v: isinstance(v, str) and not v.strip())
    num = values.apply(pd.to_numeric, errors="coerce")
    bad = ~empty & ~(np.isfinite(num.astype(float)) & (num > 0))
    if bad.to_numpy().any():
        r, k = np.argwhere(bad.to_numpy())[0]  # the first in reading order
        raw = values.iat[r, k]
        raise UserError(
            f"loss in column {str(size_cols[k]).strip()!r} must be a positive number, "
            f"got {raw.item() if hasattr(raw, 'item') else raw!r}",
            path=path,
            line=int(lines.iloc[r]),
        )
    parts = []
    for c in size_cols:
        keep = ~empty[c]
        parts.append(df.loc[keep, other].assign(**{data: sizes[c], target: num.loc[keep, c]}))
    long = pd.concat(parts)
    long[target] = long[target].astype(float)
    order = np.lexsort((long[data].to_numpy(), long.index.to_numpy()))
    return long.iloc[order].reset_index(drop=True)


def read_candidates(
    path: str, *, id_col: str = "model", data: str = "data_size", target: str = "loss"
) -> list:
    """Candidates for model selection (:class:`ftscale.laws.selection.Curve`), from a table.

    Wide: one row per candidate, ``id_col`` its name; every column whose header is a
    non-negative integer is a data size (examples) with losses (nats/token) as values, ``0``
    being the zero-shot loss; an empty cell is a size not run; ``size`` (or ``model_size``) and
    ``family`` are covariates and other columns metadata. Long: ``id_col``, ``data`` and
    ``target`` (seeds averaged per size; ``data`` = 0 rows are the zero-shot loss), optional
    ``model_size`` / ``family``.
    """
    from ftscale.laws.selection import make_curve

    df = tables.read_table(path)
    if id_col not in df.columns:
        cols = ", ".join(repr(str(c)) for c in df.columns if c != tables.ROW)
        raise UserError(
            f"missing column {id_col!r} (the candidate id; see --id-col); columns: {cols}",
            path=path,
        )
    long = wide_to_long(df, id_col=id_col, data=data, target=target, path=path)
    if long is not None:
        other = [c for c in df.columns if c not in (tables.ROW,) and _size_header(c) is None]
        other.remove(id_col)
        out = []
        by_line = dict(iter(long.groupby(tables.ROW, sort=False)))
        for _, row in df.iterrows():
            pts = by_line.get(row[tables.ROW], long.iloc[:0])
            zero = pts.loc[pts[data] == 0, target]
            pts = pts[pts[data] > 0]
            cov = _covariates(row, other, path)
            out.append(
                make_curve(
                    str(row[id_col]).strip(),
                    pts[data].to_numpy(float),
                    pts[target].to_numpy(float),
                    zero_shot=float(zero.iloc[0]) if len(zero) else None,
                    **cov,
                )
            )
        if all(c.sizes.size == 0 for c in out):
            raise UserError("no losses at a positive data size in the table", path=path)
        return out
    if data not in df.columns:
        raise UserError(
            f"no data sizes: neither integer column headers (a wide table) nor a {data!r} column "
            "(a long table)",
            path=path,
        )
    df = tables.validate(df, path, required=(id_col,), losses=(target,))
    d = pd.to_numeric(df[data], errors="coerce")
    bad = ~(np.isfinite(d) & (d >= 0))
    if bad.any():
        idx = df.index[bad][0]
        raise UserError(
            f"{data} must be a non-negative number, got {df.at[idx, data]!r}",
            path=path,
            line=int(df.at[idx, tables.ROW]),
        )
    df = df.assign(**{data: d})
    out = []
    for name, sub in df.groupby(id_col, sort=True):
        pts = sub.groupby(data, as_index=False)[target].mean()
        zero = pts.loc[pts[data] == 0, target]
        pts = pts[pts[data] > 0]
        first = sub.iloc[0]
        cov = _covariates(first, [c for c in ("model_size", "family") if c in sub.columns], path)
        cov.pop("meta", None)
        out.append(
            make_curve(
                str(name),
                pts[data].to_numpy(),
                pts[target].to_numpy(),
                zero_shot=float(zero.iloc[0]) if len(zero) else None,
                **cov,
            )
        )
    return out
