"""The SQLite back end, the embedded default: one file per study, WAL mode.

Claiming a run is a conditional UPDATE inside an IMMEDIATE transaction, so two runners on the
same file never run the same run. SQLite's journal makes every commit atomic, so killing a runner
with SIGKILL at any moment loses at most the runs it had in flight. WAL needs the runners on one
machine (SQLite's documentation: it does not work over a network filesystem); runners on several
machines share a PostgreSQL store instead (:mod:`ftscale.study.storage.postgres`).

Schema versions: 1 (ftscale before the storage protocol); 2 adds ``runs.host``. A version-1
store is migrated in place when opened, so old stores stay readable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.study.storage.base import DEFAULT_STALE_AFTER, StoredRun, this_host
from ftscale.study.storage.sql import SCHEMA_VERSION, SQLStore, parse_version, schema

_SCHEMA = schema("REAL")


class SQLiteStore(SQLStore):
    """SQLite-backed store of a study's runs.

    Args:
        path: the SQLite file (created if missing).
        stale_after: seconds after which a runner whose heartbeat has not moved is presumed dead
            (used for runners on other hosts, whose pid cannot be checked).
    """

    def __init__(self, path: str | os.PathLike, *, stale_after: float = DEFAULT_STALE_AFTER):
        self.path = Path(path)
        self.location = str(path)
        self.stale_after = stale_after
        if self.path.exists() and self.path.is_dir():
            raise UserError("store path is a directory, expected a SQLite file", path=str(path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create the store's folder: {exc.strerror}", path=str(path)
            ) from None
        # Several runners may create the same new store at once; switching to WAL and creating
        # the schema can then answer "database is locked" without waiting on the busy timeout,
        # so those steps are retried for a while before giving up.
        deadline = time.monotonic() + 60.0
        while True:
            db = None
            try:
                db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(";\n".join(_SCHEMA) + ";")
                db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                self._db = db
                self._check_version()
                break
            except sqlite3.OperationalError as exc:
                if db is not None:
                    db.close()
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise UserError(f"not a usable ftscale store ({exc})", path=str(path)) from None
                if time.monotonic() > deadline:
                    raise UserError(
                        f"store stayed locked for 60 s ({exc})", path=str(path)
                    ) from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                if db is not None:
                    db.close()
                raise UserError(f"not a usable ftscale store ({exc})", path=str(path)) from None
        self.runner_id: str | None = None

    def _version(self) -> int | None:
        return parse_version(
            self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        )

    def _check_version(self) -> None:
        version = self._version()
        if version is None or version > SCHEMA_VERSION:
            self._db.close()
            raise UserError(
                f"store schema version {version if version is not None else 'missing'}: this "
                f"ftscale reads versions up to {SCHEMA_VERSION} (a store of a newer ftscale, or "
                "not an ftscale store)",
                path=str(self.path),
            )
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Bring an older store up to :data:`SCHEMA_VERSION` (under the write lock, so runners
        opening it at once migrate it once)."""
        with self._tx():
            version = self._version() or 1
            if version < 2:
                cols = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
                if "host" not in cols:
                    self._db.execute("ALTER TABLE runs ADD COLUMN host TEXT")
            self._db.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    # -- planning ----------------------------------------------------------------------------
    def add_runs(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        now = time.time()
        with self._tx():
            before = self._db.total_changes
            for i, (key, spec) in enumerate(runs):
                self._db.execute(
                    "INSERT OR IGNORE INTO runs(run_key, ord, spec, created_at) VALUES (?,?,?,?)",
                    (key, i, json.dumps(spec, sort_keys=True), now),
                )
            return self._db.total_changes - before

    # -- claims --------------------------------------------------------------------------------
    def claim(self, keys: Iterable[str] | None = None, limit: int = 1) -> list[StoredRun]:
        if self.runner_id is None:
            raise RuntimeError("register_runner() first")
        now = time.time()
        with self._tx():
            if keys is None:
                rows = self._db.execute(
                    "SELECT run_key FROM runs WHERE status='pending' ORDER BY ord LIMIT ?",
                    (limit,),
                ).fetchall()
                cand = [r[0] for r in rows]
            else:  # plan order among the keys
                want = set(keys)
                rows = self._db.execute(
                    "SELECT run_key FROM runs WHERE status='pending' ORDER BY ord"
                ).fetchall()
                cand = [r[0] for r in rows if r[0] in want]
            taken = []
            for key in cand:
                if len(taken) >= limit:
                    break
                cur = self._db.execute(
                    "UPDATE runs SET status='running', runner=?, host=?, started_at=?, "
                    "attempts=attempts+1 WHERE run_key=? AND status='pending'",
                    (self.runner_id, this_host(), now, key),
                )
                if cur.rowcount == 1:
                    taken.append(key)
        return [self.get(k) for k in taken]


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so claims never interleave."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
