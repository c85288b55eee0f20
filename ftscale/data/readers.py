"""Reading the user's data files into records, each with the line it came from.

Files, by suffix: JSON (``.json``: an array of objects, or one object per line), JSONL
(``.jsonl``/``.ndjson``), CSV (``.csv``), TSV (``.tsv``/``.tab``), Parquet (``.parquet``/``.pq``);
a folder written by ``datasets``' ``save_to_disk``; or a Hugging Face hub dataset name, read
through ``datasets.load_dataset`` (from the local ``datasets`` cache when offline; online loading
cannot be tested on the project's machines). Line numbers are the file's own (JSON, JSONL, CSV)
or the row number (Parquet, ``datasets``). Text must be UTF-8; the first undecodable byte is
reported with its line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ftscale.errors import UserError

SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

Record = tuple[dict[str, Any], int]  # (record, line or row number)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UserError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            path=str(path),
            line=line,
        ) from None


def _jsonl(path: Path, text: str) -> Iterator[Record]:
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"malformed JSON ({exc.msg})", path=str(path), line=i) from None
        if not isinstance(rec, dict):
            raise UserError("a JSONL line must be an object", path=str(path), line=i)
        yield rec, i


def _json(path: Path, text: str) -> Iterator[Record]:
    """A JSON array of objects, element by element, each with the line it starts on; a file
    that is not an array is read as JSONL (LLaMA-Factory accepts both under ``.json``)."""
    start = len(text) - len(text.lstrip())
    if not text[start:].startswith("["):
        yield from _jsonl(path, text)
        return
    dec = json.JSONDecoder()
    pos, line, counted = start + 1, 1, 0
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= n:
            line += text.count("\n", counted, pos)
            raise UserError("malformed JSON (the array is not closed)", path=str(path), line=line)
        line += text.count("\n", counted, pos)
        counted = pos
        if text[pos] == "]":
            rest = text[pos + 1 :].strip()
            if rest:
                raise UserError("malformed JSON (text after the array)", path=str(path), line=line)
            return
        try:
            rec, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            bad = line + text.count("\n", pos, exc.pos)
            raise UserError(f"malformed JSON ({exc.msg})", path=str(path), line=bad) from None
        if not isinstance(rec, dict):
            raise UserError(
                "each element of the JSON array must be an object", path=str(path), line=line
            )
        yield rec, line
        pos = end


def _delimited(path: Path, text: str, delimiter: str) -> Iterator[Record]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        if not reader.fieldnames:
            return
        for rec in reader:
            if None in rec:  # more cells than header fields
                raise UserError(
                    f"{len(reader.fieldnames) + len(rec[None])} cells under "
                    f"{len(reader.fieldnames)} header fields",
                    path=str(path),
                    line=reader.line_num,
                )
            yield {k: v for k, v in rec.items() if v is not None}, reader.line_num
    except csv.Error as exc:
        raise UserError(f"malformed CSV ({exc})", path=str(path), line=reader.line_num) from None


def _parquet(path: Path) -> Iterator[Record]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise UserError(f"not a readable Parquet file ({exc})", path=str(path)) from None
    for i, rec in enumerate(table.to_pylist(), 1):
        yield rec, i


def read_file(path: Path) -> list[Record]:
    """Every record of the data file ``path`` with its line (see the module docstring)."""
    if not path.exists():
        raise UserError("no such file or folder", path=str(path))
    if path.is_dir():
        raise UserError("a folder here must be a datasets save_to_disk folder", path=str(path))
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"unknown data format {path.suffix!r}; use .json, .jsonl, .csv, .tsv or .parquet",
            path=str(path),
        )
    if fmt == "parquet":
        return list(_parquet(path))
    text = _decode(path)
    if fmt == "json":
        return list(_json(path, text))
    if fmt == "jsonl":
        return list(_jsonl(path, text))
    return list(_delimited(path, text, "," if fmt == "csv" else "\t"))


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``datasets.Dataset(Dict).save_to_disk``."""
    return path.is_dir() and (
        (path / "dataset_dict.json").exists() or (path / "dataset_info.json").exists()
    )


#: ``datasets`` split names -> ours ("validation" is our dev split).
SPLIT_NAMES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "test": "test"}


def read_datasets(obj: Any, where: str) -> dict[str, list[Record]] | list[Record]:
    """Records of a ``datasets`` Dataset (one pool) or DatasetDict (its splits, by our names)."""
    if hasattr(obj, "column_names") and not isinstance(obj.column_names, dict):
        return [(dict(r), i) for i, r in enumerate(obj, 1)]
    out: dict[str, list[Record]] = {}
    for split_name in obj:
        if split_name in SPLIT_NAMES:
            out[SPLIT_NAMES[split_name]] = [(dict(r), i) for i, r in enumerate(obj[split_name], 1)]
    if "train" not in out:
        raise UserError(f"no train split (splits: {', '.join(obj)})", path=where)
    return out


def load_saved(path: Path) -> Any:
    import datasets

    try:
        return datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged or fake folder: the user's data
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(
            f"not a readable `datasets` folder ({type(exc).__name__}: {msg})", path=str(path)
        ) from None


def load_hub(name: str) -> Any:
    """A hub dataset by name, through ``datasets`` (its local cache when offline)."""
    try:
        import datasets
    except ImportError:
        raise UserError(
            f"no such file, and reading hub dataset {name!r} needs `datasets` "
            "(pip install 'ftscale[hub]')"
        ) from None
    try:
        return datasets.load_dataset(name)
    except Exception as exc:  # noqa: BLE001 - network, cache miss or a bad name: the user's input
        msg = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(
            f"no such file, and not a loadable hub dataset ({msg})", path=name
        ) from None
