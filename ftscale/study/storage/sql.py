"""What the SQL back ends (SQLite, PostgreSQL) share: the tables, and every statement that reads
the same in both dialects.

Statements are written with ``?`` placeholders; a back end whose driver uses another style sets
:attr:`SQLStore.PARAM` and :meth:`SQLStore._exec` rewrites them. A back end supplies its
connection (``self._db``: ``execute`` returns a cursor with ``fetchone``/``fetchall``/``rowcount``),
its transaction (:meth:`SQLStore._tx`) and what differs in SQL (planning, claims, key lists).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from ftscale.study.storage.base import (
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

#: Version 1: ftscale before the storage protocol; 2 adds ``runs.host``.
SCHEMA_VERSION = 2


def schema(real: str) -> list[str]:
    """The store's tables and index, one statement each; ``real``: the dialect's float type."""
    return [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS runs (
            run_key     TEXT PRIMARY KEY,
            ord         INTEGER NOT NULL,
            spec        TEXT NOT NULL,
            status      TEXT NOT NULL DEFAULT 'pending',
            record      TEXT,
            error       TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            runner      TEXT,
            created_at  {real} NOT NULL,
            started_at  {real},
            finished_at {real},
            host        TEXT
        )""",
        "CREATE INDEX IF NOT EXISTS runs_status ON runs(status, ord)",
        f"""CREATE TABLE IF NOT EXISTS runners (
            runner_id  TEXT PRIMARY KEY,
            host       TEXT NOT NULL,
            pid        INTEGER NOT NULL,
            started_at {real} NOT NULL,
            heartbeat  {real} NOT NULL
        )""",
    ]


def parse_version(row: tuple | None) -> int | None:
    """The schema version stored in ``meta`` (its row), or None if missing or unreadable."""
    try:
        return int(json.loads(row[0])) if row is not None else None
    except (TypeError, ValueError):
        return None


def tally(rows: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Status counts from ``(status, count)`` rows, every status present."""
    out = dict.fromkeys(STATUSES, 0)
    for status, n in rows:
        out[status] = n
    return out


class SQLStore(RunStorage):
    """A :class:`RunStorage` over a SQL connection ``self._db`` (set by the back end)."""

    #: The driver's placeholder for a parameter.
    PARAM = "?"

    _db: Any

    def _exec(self, sql: str, params: Any = ()) -> Any:
        if self.PARAM != "?":
            sql = sql.replace("?", self.PARAM)
        return self._db.execute(sql, params)

    def _tx(self) -> AbstractContextManager:
        """A transaction that holds the store's write lock for the claim and requeue steps."""
        raise NotImplementedError

    def _is_closed(self) -> bool:
        return False

    def _text(self, s: str | None) -> str | None:
        """``s`` as the dialect's text column can hold it."""
        return s

    def _lock_requeue(self) -> None:
        """Serialise requeue passes (inside :meth:`_tx`), where the transaction does not."""

    def _in(self, column: str, values: list) -> tuple[str, list]:
        """A condition ``column`` is one of ``values``, and its parameters."""
        return f"{column} IN ({','.join('?' * len(values))})", values

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if self._is_closed():
            return
        if self.runner_id is not None:
            self._exec("DELETE FROM runners WHERE runner_id=?", (self.runner_id,))
            self.runner_id = None
        self._db.close()

    # -- meta --------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self._exec(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._exec("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- runners and claims --------------------------------------------------------------------
    def register_runner(self) -> str:
        self.runner_id = uuid.uuid4().hex
        now = time.time()
        with self._tx():
            self._exec(
                "INSERT INTO runners(runner_id, host, pid, started_at, heartbeat) VALUES (?,?,?,?,?)",
                (self.runner_id, this_host(), os.getpid(), now, now),
            )
        self.requeue_orphans()
        return self.runner_id

    def heartbeat(self) -> None:
        if self.runner_id is not None:
            self._exec(
                "UPDATE runners SET heartbeat=? WHERE runner_id=?", (time.time(), self.runner_id)
            )

    def requeue_orphans(self) -> int:
        with self._tx():
            self._lock_requeue()
            dead = [
                rid
                for rid, host, pid, beat in self._exec(
                    "SELECT runner_id, host, pid, heartbeat FROM runners"
                ).fetchall()
                if rid != self.runner_id and runner_is_dead(host, pid, beat, self.stale_after)
            ]
            if dead:
                cond, params = self._in("runner_id", dead)
                self._exec(f"DELETE FROM runners WHERE {cond}", params)
            # Runs held by a runner that is gone (dead and deleted above, or never registered).
            return self._exec(
                "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
                "WHERE status='running' AND (runner IS NULL OR NOT EXISTS "
                "(SELECT 1 FROM runners w WHERE w.runner_id = runs.runner))"
            ).rowcount

    def held_elsewhere(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        want = set(keys)
        return [
            held_row(key, host, pid, beat, self.stale_after)
            for key, host, pid, beat in self._exec(
                "SELECT r.run_key, w.host, w.pid, w.heartbeat FROM runs r LEFT JOIN runners w "
                "ON r.runner = w.runner_id WHERE r.status='running' AND "
                "(r.runner IS NULL OR r.runner != ?)",
                (self.runner_id or "",),
            ).fetchall()
            if key in want
        ]

    def _finish(
        self, run_key: str, status: str, record: dict[str, Any] | None, error: str | None,
        host: str | None,
    ) -> bool:  # fmt: skip
        cur = self._exec(
            "UPDATE runs SET status=?, record=?, error=?, finished_at=?, host=COALESCE(?, host) "
            "WHERE run_key=? AND status='running' AND runner=?",
            (
                status, dump_record(record), self._text(error), time.time(), host, run_key,
                self.runner_id,
            ),
        )  # fmt: skip
        return cur.rowcount == 1

    def release(self, run_key: str) -> None:
        self._exec(
            "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
            "WHERE run_key=? AND status='running' AND runner=?",
            (run_key, self.runner_id),
        )

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        cond, params = self._in("status", list(statuses))
        return self._exec(
            f"UPDATE runs SET status='pending', runner=NULL, error=NULL WHERE {cond}", params
        ).rowcount

    # -- reading -----------------------------------------------------------------------------
    def get(self, run_key: str) -> StoredRun:
        row = self._exec(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key=?", (run_key,)).fetchone()
        if row is None:
            raise KeyError(run_key)
        return row_to_run(row)

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        if keys is None:
            rows = self._exec(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY ord, run_key").fetchall()
            yield from (row_to_run(r) for r in rows)
        else:
            yield from self._runs_of(keys)

    def _runs_of(self, keys: Iterable[str]) -> Iterator[StoredRun]:
        """The stored runs among ``keys``, in that order (one query per key)."""
        for key in keys:
            row = self._exec(f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key=?", (key,)).fetchone()
            if row is not None:
                yield row_to_run(row)

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        if keys is not None:
            return super().counts(keys)
        return tally(self._exec("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall())
