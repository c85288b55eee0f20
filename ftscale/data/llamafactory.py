"""LLaMA-Factory's ``dataset_info.json`` as a task source: an entry's file, formatting
(alpaca or sharegpt), columns and role tags, translated into ftscale's task-source keys."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftscale.data import formats
from ftscale.errors import UserError

#: LLaMA-Factory's alpaca column names -> ours.
_LF_ALPACA = {"prompt": "instruction", "query": "input", "response": "output"}


def from_dataset_info(
    spec: Mapping[str, Any], base: Path | None, task_name: str | None
) -> dict[str, Any]:
    """A ``[tasks.NAME]`` table whose ``path`` is a LLaMA-Factory ``dataset_info.json``: its
    entry ``dataset`` (the only one, if there is one) gives the file, the formatting (alpaca or
    sharegpt), the column names and the role tags. Other keys of the table still apply."""
    info_path = Path(spec["path"]).expanduser()
    if not info_path.is_absolute():
        info_path = (base or Path.cwd()) / info_path
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"not a readable dataset_info.json ({exc})", path=str(info_path)) from None
    name = spec.get("dataset")
    if name is None:
        if not isinstance(info, dict) or len(info) != 1:
            raise UserError(
                "several datasets: name one with `dataset` (--dataset)", path=str(info_path)
            )
        name = next(iter(info))
    entry = info.get(name) if isinstance(info, dict) else None
    if not isinstance(entry, dict):
        known = ", ".join(info) if isinstance(info, dict) else "none"
        raise UserError(f"no dataset {name!r} (known: {known})", path=str(info_path))
    where = entry.get("file_name") or entry.get("hf_hub_url")
    if not where:
        raise UserError(f"dataset {name!r} has no file_name or hf_hub_url", path=str(info_path))
    columns, tags = entry.get("columns") or {}, entry.get("tags") or {}
    if entry.get("formatting", "alpaca") == "sharegpt":
        fmt = "sharegpt"
        fields = {k: columns[k] for k in ("messages", "system") if k in columns}
        fields.update({k: v for k, v in tags.items() if k in formats.ROLE_TAGS})
        if "role_tag" in tags:
            fields["role"] = tags["role_tag"]
        if "content_tag" in tags:
            fields["content"] = tags["content_tag"]
    else:
        fmt = "alpaca"
        fields = {
            _LF_ALPACA.get(k, k): v
            for k, v in columns.items()
            if k in (*_LF_ALPACA, "system", "history")
        }
    out = {k: v for k, v in spec.items() if k != "dataset"}
    path = Path(where)
    out["path"] = str(info_path.parent / path) if entry.get("file_name") else where
    out.setdefault("format", fmt)
    if fields and "fields" not in spec:
        out["fields"] = fields
    out["name"] = spec.get("name") or task_name or name
    return out
