"""The durable run store: one SQLite file per study (WAL mode).

Every planned run is one row keyed by its ``run_key``. A run moves
``pending -> running -> done | failed | diverged``. Claiming a run is a single conditional
UPDATE inside an IMMEDIATE transaction, so two runners on the same store never run the same run.
A runner records itself in ``runners`` with its pid, host and a heartbeat; a run left ``running``
by a runner that is gone (its process dead on this host, or its heartbeat stale) goes back to
``pending`` when the next runner starts. SQLite's journal makes every commit atomic, so killing a
runner with SIGKILL at any moment loses at most the runs it had in flight.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftscale.errors import UserError

STATUSES = ("pending", "running", "done", "failed", "diverged")
#: Final states: a run in one of these is never run again unless explicitly retried.
FINISHED = ("done", "failed", "diverged")

SCHEMA_VERSION = 1

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
    finished_at REAL
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


@dataclass(frozen=True)
class StoredRun:
    """One row of the store."""

    run_key: str
    spec: dict[str, Any]
    status: str
    record: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): look closer.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class RunStore:
    """SQLite-backed store of a study's runs.

    Args:
        path: the SQLite file (created if missing).
        stale_after: seconds after which a runner whose heartbeat has not moved is presumed dead
            (used for runners on other hosts, whose pid cannot be checked).
    """

    def __init__(self, path: str | os.PathLike, *, stale_after: float = 600.0):
        self.path = Path(path)
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

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(json.loads(row[0])) if row is not None else None
        except (TypeError, ValueError):
            version = None
        if version is None or version > SCHEMA_VERSION:
            self._db.close()
            raise UserError(
                f"store schema version {row[0] if row else 'missing'!s}: this ftscale reads "
                f"version {SCHEMA_VERSION} (a store of a newer ftscale, or not an ftscale store)",
                path=str(self.path),
            )

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self.runner_id is not None:
            self._db.execute("DELETE FROM runners WHERE runner_id=?", (self.runner_id,))
            self.runner_id = None
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        """Insert planned runs (run_key, spec) that are not stored yet; returns how many were new."""
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
        """Register this process as a runner and requeue runs orphaned by dead runners."""
        self.runner_id = uuid.uuid4().hex
        now = time.time()
        with self._tx():
            self._db.execute(
                "INSERT INTO runners(runner_id, host, pid, started_at, heartbeat) VALUES (?,?,?,?,?)",
                (self.runner_id, socket.gethostname(), os.getpid(), now, now),
            )
        self.requeue_orphans()
        return self.runner_id

    def heartbeat(self) -> None:
        if self.runner_id is not None:
            self._db.execute(
                "UPDATE runners SET heartbeat=? WHERE runner_id=?", (time.time(), self.runner_id)
            )

    def _dead_runners(self) -> list[str]:
        host, now = socket.gethostname(), time.time()
        dead = []
        for rid, rhost, pid, beat in self._db.execute(
            "SELECT runner_id, host, pid, heartbeat FROM runners"
        ):
            if rid == self.runner_id:
                continue
            if (rhost == host and not _pid_alive(pid)) or now - beat > self.stale_after:
                dead.append(rid)
        return dead

    def requeue_orphans(self) -> int:
        """Return runs held by dead runners to ``pending``; returns how many."""
        with self._tx():
            dead = self._dead_runners()
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
        """Runs among ``keys`` marked running by another runner: ``[{"run_key", "host", "pid",
        "heartbeat_age" (s), "requeue_in" (s until the store presumes it dead; 0 if it already
        would)}]``."""
        want = set(keys)
        now = time.time()
        out = []
        for key, host, pid, beat in self._db.execute(
            "SELECT r.run_key, w.host, w.pid, w.heartbeat FROM runs r LEFT JOIN runners w "
            "ON r.runner = w.runner_id WHERE r.status='running' AND "
            "(r.runner IS NULL OR r.runner != ?)",
            (self.runner_id or "",),
        ):
            if key not in want:
                continue
            age = None if beat is None else max(0.0, now - beat)
            out.append(
                {
                    "run_key": key,
                    "host": host,
                    "pid": pid,
                    "heartbeat_age": age,
                    "requeue_in": 0.0 if age is None else max(0.0, self.stale_after - age),
                }
            )
        return out

    def claim(self, keys: Iterable[str] | None = None, limit: int = 1) -> list[StoredRun]:
        """Atomically take up to ``limit`` pending runs (in plan order) for this runner."""
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
            else:
                cand = list(keys)
            taken = []
            for key in cand:
                if len(taken) >= limit:
                    break
                cur = self._db.execute(
                    "UPDATE runs SET status='running', runner=?, started_at=?, "
                    "attempts=attempts+1 WHERE run_key=? AND status='pending'",
                    (self.runner_id, now, key),
                )
                if cur.rowcount == 1:
                    taken.append(key)
        return [self.get(k) for k in taken]

    def finish(
        self,
        run_key: str,
        status: str,
        record: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Record a claimed run's outcome. Returns False if this runner no longer holds the run
        (it was requeued as orphaned and taken by another runner): the outcome is then dropped,
        so a run is never recorded twice."""
        if status not in FINISHED:
            raise ValueError(f"not a final status: {status}")
        cur = self._db.execute(
            "UPDATE runs SET status=?, record=?, error=?, finished_at=? "
            "WHERE run_key=? AND status='running' AND runner=?",
            (
                status,
                None if record is None else json.dumps(record, sort_keys=True, allow_nan=True),
                error,
                time.time(),
                run_key,
                self.runner_id,
            ),
        )
        return cur.rowcount == 1

    def release(self, run_key: str) -> None:
        """Give a claimed run back (e.g. on Ctrl-C) without recording an outcome."""
        self._db.execute(
            "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
            "WHERE run_key=? AND status='running' AND runner=?",
            (run_key, self.runner_id),
        )

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        """Put runs in the given final states back to ``pending``; returns how many."""
        statuses = tuple(statuses)
        q = ",".join("?" * len(statuses))
        return self._db.execute(
            f"UPDATE runs SET status='pending', runner=NULL, error=NULL WHERE status IN ({q})",
            statuses,
        ).rowcount

    # -- reading -----------------------------------------------------------------------------
    def get(self, run_key: str) -> StoredRun:
        row = self._db.execute(
            "SELECT run_key, spec, status, record, error, attempts, created_at, started_at, "
            "finished_at FROM runs WHERE run_key=?",
            (run_key,),
        ).fetchone()
        if row is None:
            raise KeyError(run_key)
        return _row(row)

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        """All stored runs in plan order (or those of ``keys``, in that order)."""
        sql = (
            "SELECT run_key, spec, status, record, error, attempts, created_at, started_at, "
            "finished_at FROM runs"
        )
        if keys is None:
            for row in self._db.execute(sql + " ORDER BY ord, run_key").fetchall():
                yield _row(row)
        else:
            for key in keys:
                row = self._db.execute(sql + " WHERE run_key=?", (key,)).fetchone()
                if row is not None:
                    yield _row(row)

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        if keys is None:
            for status, n in self._db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"):
                out[status] = n
        else:
            for run in self.runs(keys):
                out[run.status] += 1
        return out


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT: takes the write lock up front so claims never interleave."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _json_field(key: str, what: str, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise UserError(
            f"run {key} in the store has a corrupt {what} (not JSON); remove the run or the "
            "store to re-run it"
        ) from None


def _row(row: tuple) -> StoredRun:
    key, spec, status, record, error, attempts, created, started, finished = row
    return StoredRun(
        run_key=key,
        spec=_json_field(key, "spec", spec),
        status=status,
        record=_json_field(key, "record", record),
        error=error,
        attempts=attempts,
        created_at=created,
        started_at=started,
        finished_at=finished,
    )
