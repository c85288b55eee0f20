"""The user's own data behind the :class:`~ftscale.data.tasks.Task` interface.

Formats, chosen by file suffix: JSONL (``.jsonl``/``.ndjson``), CSV (``.csv``), TSV
(``.tsv``/``.tab``), Parquet (``.parquet``/``.pq``), and a folder written by
``datasets.Dataset(Dict).save_to_disk``. A name that is no local path is tried as a Hugging Face
hub dataset (needs the network and ``datasets``; never used by the project's tests or demo).

Splits: give ``{"train": path, "dev": path, "test": path}``, or one file/dataset whose rows are
split deterministically (by a hash of the row number) into dev/test of ``eval_size`` each and a
training split of the rest. A ``save_to_disk`` DatasetDict keeps its own splits
("validation" counts as "dev").
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ftscale.data.tasks import SPLITS, Example, Task
from ftscale.errors import UserError

Row = tuple[str, str, str]  # source, target, lang

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


class _Fields:
    """The user's field names and how each row gets its language."""

    def __init__(self, source: str, target: str, lang: str | None, lang_field: str | None):
        self.source, self.target, self.lang, self.lang_field = source, target, lang, lang_field

    def names(self) -> list[str]:
        return [self.source, self.target] + ([self.lang_field] if self.lang_field else [])

    def row(self, rec: Mapping, path: str, line: int | None) -> Row:
        vals = []
        for f in self.names():
            v = rec.get(f)
            if v is None or (isinstance(v, str) and not v.strip()):
                raise UserError(f"field {f!r} is missing or empty", path=path, line=line)
            if not isinstance(v, str):
                raise UserError(
                    f"field {f!r} is not text ({type(v).__name__})", path=path, line=line
                )
            vals.append(v)
        lang = vals[2] if self.lang_field else (self.lang or "und")
        return vals[0], vals[1], lang

    def check_columns(self, columns: list[str], path: str) -> None:
        missing = [f for f in self.names() if f not in columns]
        if missing:
            raise UserError(
                f"no field {missing[0]!r}; the columns are: {', '.join(map(str, columns))}",
                path=path,
            )


def _read_jsonl(path: Path, fields: _Fields) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"malformed JSON ({exc.msg})", path=str(path), line=i) from exc
            if not isinstance(rec, dict):
                raise UserError("a JSONL line must be an object", path=str(path), line=i)
            rows.append(fields.row(rec, str(path), i))
    return rows


def _read_delimited(path: Path, fields: _Fields, delimiter: str) -> list[Row]:
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            fields.check_columns(list(reader.fieldnames or []), str(path))
            for rec in reader:
                rows.append(fields.row(rec, str(path), reader.line_num))
        except csv.Error as exc:
            raise UserError(f"malformed CSV ({exc})", path=str(path), line=reader.line_num) from exc
    return rows


def _read_parquet(path: Path, fields: _Fields) -> list[Row]:
    import pyarrow.parquet as pq

    try:
        schema_names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise UserError(f"not a readable Parquet file ({exc})", path=str(path)) from exc
    fields.check_columns(schema_names, str(path))
    table = pq.read_table(path, columns=fields.names())
    return [fields.row(rec, str(path), i) for i, rec in enumerate(table.to_pylist(), 1)]


def _read_dataset(ds, fields: _Fields, where: str) -> list[Row]:
    fields.check_columns(list(ds.column_names), where)
    return [fields.row(rec, where, i) for i, rec in enumerate(ds.select_columns(fields.names()), 1)]


def _read_file(path: Path, fields: _Fields) -> list[Row]:
    if not path.exists():
        raise UserError("no such file or folder", path=str(path))
    if path.is_dir():
        raise UserError("a folder here must be a datasets save_to_disk folder", path=str(path))
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"unknown data format {path.suffix!r}; use .jsonl, .csv, .tsv or .parquet",
            path=str(path),
        )
    try:
        if fmt == "jsonl":
            return _read_jsonl(path, fields)
        if fmt == "parquet":
            return _read_parquet(path, fields)
        return _read_delimited(path, fields, "," if fmt == "csv" else "\t")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text ({exc.reason})", path=str(path)) from exc


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()
    )


def _carve(rows: list[Row], eval_size: int | None, where: str) -> dict[str, list[Row]]:
    """Split one pool of rows into train/dev/test by a hash of the row number."""
    n = len(rows)
    if n == 0:
        raise UserError("no examples", path=where)
    k = eval_size if eval_size is not None else min(500, n // 10)
    if k < 0 or 2 * k >= n:
        raise UserError(f"eval_size {k} leaves no training examples out of {n}", path=where)
    order = sorted(range(n), key=lambda i: hashlib.blake2b(str(i).encode(), digest_size=8).digest())
    test, dev = set(order[:k]), set(order[k : 2 * k])
    return {
        "train": [r for i, r in enumerate(rows) if i not in test and i not in dev],
        "dev": [r for i, r in enumerate(rows) if i in dev],
        "test": [r for i, r in enumerate(rows) if i in test],
    }


def _from_datasets(obj, fields: _Fields, eval_size: int | None, where: str) -> dict[str, list[Row]]:
    if hasattr(obj, "column_names") and not isinstance(obj.column_names, dict):
        return _carve(_read_dataset(obj, fields, where), eval_size, where)
    names = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "test": "test"}
    out: dict[str, list[Row]] = {}
    for split_name in obj:
        if split_name in names:
            out[names[split_name]] = _read_dataset(
                obj[split_name], fields, f"{where}[{split_name}]"
            )
    if "train" not in out:
        raise UserError(f"no train split (splits: {', '.join(obj)})", path=where)
    return out


def load_user_task(
    path: str | os.PathLike | Mapping[str, str | os.PathLike],
    source_field: str,
    target_field: str,
    kind: str,
    *,
    name: str | None = None,
    lang: str | None = None,
    lang_field: str | None = None,
    source_lang: str | None = None,
    prompt: str | None = None,
    eval_size: int | None = None,
) -> Task:
    """A :class:`Task` over the user's files (see the module docstring for formats and splits).

    ``lang`` is the target language of every example, or ``lang_field`` names a per-row field
    ("und" if neither). ``prompt`` is an optional template with ``{source}`` (and ``{lang}``)
    placed before the target; by default the built-in prompt of ``kind`` is used.
    ``eval_size`` is the dev and the test size (examples) when one pool is split.
    Files are read at once, so a bad row fails here, naming file and line.
    """
    if kind not in ("translate", "summarize"):
        raise UserError(f"unknown task kind {kind!r}; choose translate or summarize")
    if prompt is not None:
        if "{source}" not in prompt:
            raise UserError("the prompt template must contain {source}")
        try:
            prompt.format(source="", lang="")
        except (KeyError, IndexError, ValueError) as exc:
            raise UserError(
                f"bad prompt template ({exc!r}); only {{source}} and {{lang}} are filled in"
            ) from exc
    fields = _Fields(source_field, target_field, lang, lang_field)
    if isinstance(path, Mapping):
        unknown = [s for s in path if s not in SPLITS]
        if unknown:
            raise UserError(f"unknown split {unknown[0]!r}; choose train, dev, test")
        splits = {s: _read_file(Path(p), fields) for s, p in path.items()}
        where = str(path.get("train", next(iter(path.values()), "")))
        if "train" not in splits:
            raise UserError("no train split given")
    else:
        p = Path(path)
        where = str(p)
        if _is_saved_dataset(p):
            import datasets

            try:
                saved = datasets.load_from_disk(str(p))
            except Exception as exc:  # noqa: BLE001 - a damaged or fake folder: the user's data
                msg = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise UserError(
                    f"not a readable `datasets` folder ({type(exc).__name__}: {msg})", path=str(p)
                ) from None
            splits = _from_datasets(saved, fields, eval_size, where)
        elif p.exists() or p.suffix.lower() in _SUFFIXES:
            splits = _carve(_read_file(p, fields), eval_size, where)
        else:
            # Neither a local path nor a data file name: a hub dataset name (online only).
            import datasets

            try:
                obj = datasets.load_dataset(str(path))
            except Exception as exc:
                raise UserError(f"cannot load hub dataset ({exc})", path=str(path)) from exc
            splits = _from_datasets(obj, fields, eval_size, where)
    for s, rows in splits.items():
        if not rows:
            raise UserError(
                f"split {s!r} is empty", path=str(path[s]) if isinstance(path, Mapping) else where
            )
    examples = {s: tuple(Example(*r) for r in rows) for s, rows in splits.items()}
    languages = sorted({e.lang for rows in examples.values() for e in rows})
    return Task(
        name or Path(where).stem,
        kind,
        languages,
        lambda split: examples.get(split, ()),
        source_lang=source_lang,
        prompt_template=prompt,
        counts={s: len(examples.get(s, ())) for s in SPLITS},
        description=f"user data from {where}",
    )
