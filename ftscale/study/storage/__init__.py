"""Run-store back ends, chosen by the store's location: one file each plus one line in
``STORES``.

- ``PATH`` (no scheme) or ``sqlite:///PATH``: SQLite, the embedded default. As in SQLAlchemy and
  Optuna, ``sqlite:///x.db`` is relative and ``sqlite:////abs/x.db`` absolute.
- ``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`` (or ``postgres://``): PostgreSQL, for
  runners on several machines.
- ``memory://NAME``: in this process only, for tests.

Anything shaped like a URL (``scheme://...``) is never taken for a file path: an unknown scheme
is an error.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from ftscale.errors import UserError
from ftscale.study.storage.base import FINISHED, STATUSES, RunStorage, StoredRun

#: scheme -> "module:class", imported on use (psycopg is needed by the PostgreSQL one only).
STORES: dict[str, str] = {
    "sqlite": "ftscale.study.storage.sqlite:SQLiteStore",
    "postgresql": "ftscale.study.storage.postgres:PostgresStore",
    "memory": "ftscale.study.storage.memory:MemoryStore",
}
_ALIASES = {"postgres": "postgresql"}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.S)


def parse_store(location: str | os.PathLike) -> tuple[str, str]:
    """``(scheme, target)``: the back end's name and what it opens (a file path, a database URL,
    a memory store's name)."""
    text = os.fspath(location)
    m = _URL.match(text)
    if m is None:
        if not text:
            raise UserError("--store is empty")
        return "sqlite", text
    scheme = m.group(1).lower()
    scheme = _ALIASES.get(scheme, scheme)
    if scheme.startswith("postgresql+"):  # SQLAlchemy's driver suffix: postgresql+psycopg://
        scheme = "postgresql"
    rest = m.group(2)
    if scheme not in STORES:
        raise UserError(
            f"unknown store scheme '{m.group(1)}://' (known: a file path, "
            + ", ".join(f"{s}://" for s in STORES)
            + ")"
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise UserError("a SQLite store URL is sqlite:///PATH (three slashes)", path=text)
        return scheme, rest[1:]
    if scheme == "memory":
        if not rest:
            raise UserError("a memory store URL is memory://NAME")
        return scheme, rest
    return scheme, "postgresql://" + rest


def open_store(location: str | os.PathLike, *, must_exist: bool = False, **kwargs) -> RunStorage:
    """Open (creating if allowed) the store at ``location``; ``kwargs`` go to the back end
    (``stale_after``)."""
    scheme, target = parse_store(location)
    if must_exist and not store_exists(location):
        raise UserError(
            "no run store yet: run `ftscale study run` first", path=describe_store(location)
        )
    module, cls = STORES[scheme].split(":")
    return getattr(importlib.import_module(module), cls)(target, **kwargs)


def store_exists(location: str | os.PathLike) -> bool:
    """Whether a store is at ``location`` (a database is asked; nothing is created)."""
    scheme, target = parse_store(location)
    if scheme == "sqlite":
        return Path(target).exists()
    if scheme == "memory":
        from ftscale.study.storage.memory import memory_store_exists

        return memory_store_exists(target)
    from ftscale.study.storage.postgres import postgres_store_exists

    return postgres_store_exists(target)


def describe_store(location: str | os.PathLike) -> str:
    """``location`` for messages and JSON output (a database password redacted)."""
    scheme, target = parse_store(location)
    if scheme == "postgresql":
        from ftscale.study.storage.postgres import redact

        return redact(target)
    return os.fspath(location)


__all__ = [
    "FINISHED",
    "STATUSES",
    "STORES",
    "RunStorage",
    "StoredRun",
    "describe_store",
    "open_store",
    "parse_store",
    "store_exists",
]
