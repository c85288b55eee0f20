"""Results tables: read (CSV/TSV, Parquet, JSONL), validate, filter, group, write.

The small API every stage uses for the results table (columns in :mod:`ftscale.schema`):

- :func:`read_table(path)` -> DataFrame, with a ``_row`` column holding each row's position in
  the file (CSV: line number; JSONL: line number; Parquet: 1-based row) for error messages.
- :func:`validate(df, path, sizes=..., losses=...)` -> checks columns exist, sizes are numeric
  and positive, losses numeric and finite; a failure is a :class:`UserError` naming file and row.
- :func:`where(df, expr, path)` -> rows where a safe expression over columns holds, e.g.
  ``model_size >= 1e9 and method == "lora"`` (comparisons, ``and``/``or``/``not``, ``in``,
  arithmetic, numbers and strings; nothing else is evaluated).
- :func:`group_by(df, cols)` -> ``[(dict of key values, sub-frame)]`` in sorted key order.
- :func:`write_table(df, path, fmt=None)` -> atomic write as csv, tsv, parquet or jsonl.
"""

from __future__ import annotations

import ast
import json
import math
import operator
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ftscale.errors import UserError
from ftscale.fsutil import atomic_write

ROW = "_row"
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def table_format(path: str | os.PathLike) -> str:
    """``csv``, ``tsv``, ``parquet`` or ``jsonl`` from the file name; anything else: UserError."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise UserError(
            f"unknown table format {suffix or '(no extension)'!r}: use .csv, .tsv, .parquet or .jsonl",
            path=str(path),
        )
    return _FORMATS[suffix]


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results table; adds the ``_row`` column (position in the file, for messages)."""
    p = str(path)
    fmt = table_format(p)
    if not os.path.exists(p):
        raise UserError("no such file", path=p)
    try:
        if fmt in ("csv", "tsv"):
            df = pd.read_csv(p, sep="," if fmt == "csv" else "\t", skipinitialspace=True)
            df[ROW] = range(2, len(df) + 2)  # line 1 is the header
        elif fmt == "parquet":
            df = pd.read_parquet(p)
            df[ROW] = range(1, len(df) + 1)
        else:
            records, lines = [], []
            with open(p, encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise UserError(f"invalid JSON ({exc.msg})", path=p, line=i) from None
                    if not isinstance(rec, dict):
                        raise UserError("each JSONL line must be an object", path=p, line=i)
                    records.append(rec)
                    lines.append(i)
            df = pd.DataFrame.from_records(records)
            df[ROW] = lines
    except UserError:
        raise
    except pd.errors.EmptyDataError:
        raise UserError("empty table", path=p) from None
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        msg = " ".join(str(exc).split())
        raise UserError(f"cannot read {fmt} table: {msg}", path=p) from None
    except Exception as exc:  # pyarrow raises its own types for corrupt Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise UserError(f"cannot read parquet table: {exc}", path=p) from None
        raise
    if len(df) == 0:
        raise UserError("empty table (no rows)", path=p)
    return df


def _refuse_first(
    df: pd.DataFrame, bad: pd.Series, path: str | None, col: str, what: str, kind: str = ""
) -> None:
    """UserError at the first row flagged in ``bad``: "<kind>column 'col' <what>" with the
    row's value of ``col`` formatted into ``what``."""
    if bad.any():
        i = bad.idxmax()
        msg = f"{kind}column {col!r} " + what.format(df.at[i, col])
        raise UserError(msg, path=path, line=_row_of(df, i))


def _row_of(df: pd.DataFrame, idx: Any) -> int | None:
    return int(df.at[idx, ROW]) if ROW in df.columns else None


def validate(
    df: pd.DataFrame,
    path: str | None = None,
    *,
    required: tuple[str, ...] = (),
    sizes: tuple[str, ...] = (),
    losses: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Check and coerce columns in place of use; returns a copy with sizes/losses as float.

    ``required``: must exist. ``sizes``: must exist, be numeric and > 0 (examples, parameters,
    tokens). ``losses``: must exist, be numeric and finite (nats/token). The first bad cell is
    reported with its file and row.
    """
    missing = [c for c in (*required, *sizes, *losses) if c not in df.columns]
    if missing:
        have = ", ".join(c for c in df.columns if c != ROW)
        raise UserError(f"missing column {missing[0]!r} (columns: {have})", path=path)
    out = df.copy()
    for col in (*sizes, *losses):
        num = pd.to_numeric(out[col], errors="coerce")
        _refuse_first(out, num.isna() & out[col].notna(), path, col, "is not numeric: {!r}")
        out[col] = num.astype(float)
    for col in sizes:
        v = out[col]
        bad = ~(v > 0) | ~v.map(math.isfinite)
        _refuse_first(out, bad, path, col, "must be positive and finite, got {!r}", "size ")
    for col in losses:
        v = out[col]
        bad = ~v.map(lambda z: isinstance(z, float) and math.isfinite(z))
        _refuse_first(out, bad, path, col, "must be finite, got {!r}", "loss ")
    return out


# -- safe expressions ----------------------------------------------------------------------------

_CMP = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_BIN = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


#: Bounds of the expression language: what a filter over a results table could need, far below
#: what could hang or exhaust memory (``10**10**8``, ``'a' * 10**10``).
MAX_EXPRESSION_CHARS = 2000
MAX_EXPRESSION_NODES = 500
MAX_LIST_ITEMS = 1000


def _eval(node: ast.AST, df: pd.DataFrame) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, df)
    if isinstance(node, ast.BoolOp):
        vals = [_eval(v, df) for v in node.values]
        acc = vals[0]
        for v in vals[1:]:
            acc = (acc & v) if isinstance(node.op, ast.And) else (acc | v)
        return acc
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, df)
        if isinstance(node.op, ast.Not):
            return ~v if isinstance(v, pd.Series) else (not v)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
    if isinstance(node, ast.Compare):
        left = _eval(node.left, df)
        acc = None
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, df)
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, list):
                    raise UserError("'in' needs a list, e.g. method in ['fmt', 'lora']")
                res = left.isin(right) if isinstance(left, pd.Series) else left in right
                if isinstance(op, ast.NotIn):
                    res = ~res if isinstance(res, pd.Series) else not res
            elif type(op) in _CMP:
                res = _CMP[type(op)](left, right)
            else:
                raise UserError(f"operator {type(op).__name__} not allowed")
            acc = res if acc is None else (acc & res)
            left = right
        return acc
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
        left, right = _eval(node.left, df), _eval(node.right, df)
        if isinstance(left, str | list) or isinstance(right, str | list):
            raise UserError("arithmetic is for numbers and columns, not strings or lists")
        return _BIN[type(node.op)](left, right)
    if isinstance(node, ast.Name):
        if node.id in df.columns and node.id != ROW:
            return df[node.id]
        if node.id in ("True", "False"):
            return node.id == "True"
        raise UserError(f"unknown column {node.id!r}")
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | str):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        # Numbers are floats: an integer power such as 10**10**8 would be computed exactly
        # (for minutes); as floats it overflows at once.
        return float(node.value)
    if isinstance(node, ast.List | ast.Tuple):
        if len(node.elts) > MAX_LIST_ITEMS:
            raise UserError(f"lists are limited to {MAX_LIST_ITEMS} items")
        return [_eval(e, df) for e in node.elts]
    raise UserError(f"{type(node).__name__} is not allowed in an expression")


def where(df: pd.DataFrame, expr: str, path: str | None = None) -> pd.Series:
    """Boolean mask of the rows where ``expr`` holds. Invalid expressions are UserErrors.

    The language: column names, numbers (as floats), strings, lists, comparisons, ``in``,
    ``and``/``or``/``not`` and + - * / ** on numbers and columns; at most
    :data:`MAX_EXPRESSION_CHARS` characters and :data:`MAX_EXPRESSION_NODES` syntax nodes, so an
    expression's cost is bounded by the table's size.
    """
    if not isinstance(expr, str):
        raise UserError("an expression must be a string")
    if len(expr) > MAX_EXPRESSION_CHARS:
        raise UserError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise UserError(f"invalid expression {expr!r}: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError):
        raise UserError(f"invalid expression {expr[:60]!r}...: too deeply nested") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_EXPRESSION_NODES:
        raise UserError(f"expression has more than {MAX_EXPRESSION_NODES} parts")
    try:
        res = _eval(tree, df)
    except UserError as exc:
        raise UserError(f"invalid expression {expr!r}: {exc}") from None
    except (TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        raise UserError(f"invalid expression {expr!r}: {exc}") from None
    except RecursionError:
        raise UserError(f"invalid expression {expr[:60]!r}...: too deeply nested") from None
    if isinstance(res, bool):
        return pd.Series(res, index=df.index)
    if not isinstance(res, pd.Series) or res.dtype != bool:
        raise UserError(f"expression {expr!r} is not a condition (true/false per row)")
    return res


def group_by(
    df: pd.DataFrame, cols: list[str] | tuple[str, ...]
) -> list[tuple[dict, pd.DataFrame]]:
    """Split by the values of ``cols``: ``[({col: value}, rows)]`` in sorted key order; no
    columns gives one group ``({}, df)``. Missing columns are UserErrors."""
    cols = list(cols)
    if not cols:
        return [({}, df)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise UserError(f"missing group-by column {missing[0]!r}")
    out = []
    for key, sub in df.groupby(cols, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append(({c: _plain(k) for c, k in zip(cols, key, strict=True)}, sub))
    return out


def _plain(v: Any) -> Any:
    """numpy/pandas scalar -> Python scalar (JSON-friendly)."""
    return v.item() if hasattr(v, "item") else v


def write_table(df: pd.DataFrame, path: str | os.PathLike, fmt: str | None = None) -> None:
    """Write ``df`` (without ``_row``) atomically as csv, tsv, parquet or jsonl."""
    fmt = fmt or table_format(path)
    df = df.drop(columns=[ROW], errors="ignore")
    if fmt in ("csv", "tsv"):
        with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "parquet":
        with atomic_write(path, "wb") as fh:
            df.to_parquet(fh, index=False)
    elif fmt == "jsonl":
        with atomic_write(path, "w", encoding="utf-8") as fh:
            df.to_json(fh, orient="records", lines=True)
    else:
        raise UserError(f"unknown table format {fmt!r}")
