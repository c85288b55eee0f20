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
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.study.storage.base import (
    DEFAULT_STALE_AFTER,
    RUN_COLUMNS,
    STATUSES,
    RunStorage,
    StoredRun,
    dump_record,
    held_row,
    row_to_run,
    runner_is_dead,
    this_host,
)

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_key     TEXT PRIMARY KEY,
    ord         INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    record      TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    runner      TEXT,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    host        TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, ord);
CREATE TABLE IF NOT EXISTS runners (
    runner_id  TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started_at REAL NOT NULL,
    heartbeat  REAL NOT NULL
);
"""


class SQLiteStore(RunStorage):
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
                db.executescript(_SCHEMA)
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
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            return int(json.loads(row[0])) if row is not None else None
        except (TypeError, ValueError):
            return None

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

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self.runner_id is not None:
            self._db.execute("DELETE FROM runners WHERE runner_id=?", (self.runner_id,))
            self.runner_id = None
        self._db.close()

    def _tx(self) -> _Tx:
        return _Tx(self._db)

    # -- meta --------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

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

    # -- runners and claims --------------------------------------------------------------------
    def register_runner(self) -> str:
        self.runner_id = uuid.uuid4().hex
        now = time.time()
        with self._tx():
            self._db.execute(
                "INSERT INTO runners(runner_id, host, pid, started_at, heartbeat) VALUES (?,?,?,?,?)",
                (self.runner_id, this_host(), os.getpid(), now, now),
            )
        self.requeue_orphans()
        return self.runner_id

    def heartbeat(self) -> None:
        if self.runner_id is not None:
            self._db.execute(
                "UPDATE runners SET heartbeat=? WHERE runner_id=?", (time.time(), self.runner_id)
            )

    def requeue_orphans(self) -> int:
        with self._tx():
            dead = [
                rid
                for rid, host, pid, beat in self._db.execute(
                    "SELECT runner_id, host, pid, heartbeat FROM runners"
                ).fetchall()
                if rid != self.runner_id and runner_is_dead(host, pid, beat, self.stale_after)
            ]
            n = 0
            for rid in dead:
                n += self._db.execute(
                    "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
                    "WHERE status='running' AND runner=?",
                    (rid,),
                ).rowcount
                self._db.execute("DELETE FROM runners WHERE runner_id=?", (rid,))
            # Runs marked running by a runner that never registered (or was deleted) are orphans too.
            n += self._db.execute(
                "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
                "WHERE status='running' AND (runner IS NULL OR runner NOT IN "
                "(SELECT runner_id FROM runners))"
            ).rowcount
            return n

    def held_elsewhere(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        want = set(keys)
        return [
            held_row(key, host, pid, beat, self.stale_after)
            for key, host, pid, beat in self._db.execute(
                "SELECT r.run_key, w.host, w.pid, w.heartbeat FROM runs r LEFT JOIN runners w "
                "ON r.runner = w.runner_id WHERE r.status='running' AND "
                "(r.runner IS NULL OR r.runner != ?)",
                (self.runner_id or "",),
            ).fetchall()
            if key in want
        ]

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

    def _finish(
        self, run_key: str, status: str, record: dict | None, error: str | None, host: str | None
    ) -> bool:
        cur = self._db.execute(
            "UPDATE runs SET status=?, record=?, error=?, finished_at=?, host=COALESCE(?, host) "
            "WHERE run_key=? AND status='running' AND runner=?",
            (status, dump_record(record), error, time.time(), host, run_key, self.runner_id),
        )
        return cur.rowcount == 1

    def release(self, run_key: str) -> None:
        self._db.execute(
            "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
            "WHERE run_key=? AND status='running' AND runner=?",
            (run_key, self.runner_id),
        )

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        statuses = tuple(statuses)
        q = ",".join("?" * len(statuses))
        return self._db.execute(
            f"UPDATE runs SET status='pending', runner=NULL, error=NULL WHERE status IN ({q})",
            statuses,
        ).rowcount

    # -- reading -----------------------------------------------------------------------------
    def get(self, run_key: str) -> StoredRun:
        row = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key=?", (run_key,)
        ).fetchone()
        if row is None:
            raise KeyError(run_key)
        return row_to_run(row)

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs"
        if keys is None:
            for row in self._db.execute(sql + " ORDER BY ord, run_key").fetchall():
                yield row_to_run(row)
        else:
            for key in keys:
                row = self._db.execute(sql + " WHERE run_key=?", (key,)).fetchone()
                if row is not None:
                    yield row_to_run(row)

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        if keys is not None:
            return super().counts(keys)
        out = dict.fromkeys(STATUSES, 0)
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
            out[status] = n
        return out


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so claims never interleave."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
