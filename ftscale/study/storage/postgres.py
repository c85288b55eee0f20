"""The PostgreSQL back end (``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE``): one store
shared by runners on many machines, as array jobs run them.

Claims: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks pending runs no other transaction is
claiming, and the same statement marks them ``running`` for this runner; the claim commits before
any run starts. Two runners never hold one run; a runner never waits on another's claim.
Leases: each runner has a row with host, pid and a heartbeat; a runner presumed dead (its
process gone on this host, or its heartbeat older than ``stale_after``, any host) has its runs
requeued. Every state change is one transaction, so a SIGKILL loses at most the runs in flight.
Heartbeat ages compare the clocks of the runners' machines: keep them synchronised (NTP).

The driver is psycopg 3 (``pip install 'ftscale[postgres]'``). A database holds one store; give
each study its own database, or share one for studies that may share runs. A database that does
not exist is created on first use when the user may (``CREATEDB``), else the error says to
``createdb`` it.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
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

SCHEMA_VERSION = 2  # as the SQLite back end's: the same tables

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_key     TEXT PRIMARY KEY,
        ord         INTEGER NOT NULL,
        spec        TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending',
        record      TEXT,
        error       TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        runner      TEXT,
        created_at  DOUBLE PRECISION NOT NULL,
        started_at  DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        host        TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS runs_status ON runs(status, ord)",
    """CREATE TABLE IF NOT EXISTS runners (
        runner_id  TEXT PRIMARY KEY,
        host       TEXT NOT NULL,
        pid        INTEGER NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        heartbeat  DOUBLE PRECISION NOT NULL
    )""",
]
#: pg_advisory_xact_lock keys: schema creation, and the runners table's requeue pass.
_SCHEMA_LOCK, _REQUEUE_LOCK = 0x66747363, 0x66747364


def redact(url: str) -> str:
    """``url`` without its password (for messages and ``--json`` output)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _connect(url: str, timeout: float = 10.0, create: bool = False):
    """A connection to ``url`` (autocommit). ``create``: make the database first if it does not
    exist (as a new SQLite file is made), when the user may."""
    psycopg = _psycopg()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        if create and _missing_database(exc):
            _create_database(url, timeout)
            return _connect(url, timeout)
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"cannot open the PostgreSQL store {redact(url)}: {msg}") from None


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise UserError(
            "a postgresql:// store needs psycopg: pip install 'ftscale[postgres]'"
        ) from None
    return psycopg


def _missing_database(exc: Exception) -> bool:
    return "does not exist" in str(exc) and "database" in str(exc)


def _create_database(url: str, timeout: float) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = conninfo_to_dict(url).get("dbname")
    try:
        with psycopg.connect(
            make_conninfo(url, dbname="postgres"),
            autocommit=True,
            connect_timeout=max(1, int(timeout)),
        ) as db:
            db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
        pass  # another runner created it meanwhile (UniqueViolation: at the same moment)
    except psycopg.Error as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(
            f"the PostgreSQL store {redact(url)}: database {name!r} does not exist and could "
            f"not be created ({msg}); create it (createdb {name}) and run again"
        ) from None


def postgres_store_exists(url: str) -> bool:
    """Whether the database at ``url`` holds an ftscale store (a ``runs`` table)."""
    psycopg = _psycopg()

    try:
        db = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        if _missing_database(exc):
            return False
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"cannot open the PostgreSQL store {redact(url)}: {msg}") from None
    with db:
        row = db.execute("SELECT to_regclass('runs') IS NOT NULL").fetchone()
        return bool(row[0])


class PostgresStore(RunStorage):
    """A store in the PostgreSQL database at ``url`` (tables created on first use)."""

    def __init__(self, url: str, *, stale_after: float = DEFAULT_STALE_AFTER):
        self.url = url
        self.location = redact(url)
        self.stale_after = stale_after
        self.runner_id = None
        self._db = _connect(url, create=True)
        with self._db.transaction():
            # Runners opening a new store at once would race on CREATE TABLE IF NOT EXISTS.
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for stmt in _SCHEMA:
                self._db.execute(stmt)
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        try:
            version = int(json.loads(row[0]))
        except (TypeError, ValueError):
            version = None
        if version != SCHEMA_VERSION:
            self._db.close()
            raise UserError(
                f"store schema version {version}: this ftscale reads version {SCHEMA_VERSION} "
                "(a store of a newer ftscale, or not an ftscale store)",
                path=self.location,
            )

    def close(self) -> None:
        if self._db.closed:
            return
        if self.runner_id is not None:
            self._db.execute("DELETE FROM runners WHERE runner_id=%s", (self.runner_id,))
            self.runner_id = None
        self._db.close()

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=%s", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def add_runs(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        now = time.time()
        rows = [
            (key, i, json.dumps(spec, sort_keys=True), now) for i, (key, spec) in enumerate(runs)
        ]
        if not rows:
            return 0
        with self._db.transaction(), self._db.cursor() as cur:
            n = 0
            for i in range(0, len(rows), 500):
                chunk = rows[i : i + 500]
                values = ",".join(["(%s,%s,%s,%s)"] * len(chunk))
                cur.execute(
                    f"INSERT INTO runs(run_key, ord, spec, created_at) VALUES {values} "
                    "ON CONFLICT (run_key) DO NOTHING",
                    [v for row in chunk for v in row],
                )
                n += cur.rowcount
            return n

    def register_runner(self) -> str:
        self.runner_id = uuid.uuid4().hex
        now = time.time()
        self._db.execute(
            "INSERT INTO runners(runner_id, host, pid, started_at, heartbeat) "
            "VALUES (%s,%s,%s,%s,%s)",
            (self.runner_id, this_host(), os.getpid(), now, now),
        )
        self.requeue_orphans()
        return self.runner_id

    def heartbeat(self) -> None:
        if self.runner_id is not None:
            self._db.execute(
                "UPDATE runners SET heartbeat=%s WHERE runner_id=%s",
                (time.time(), self.runner_id),
            )

    def requeue_orphans(self) -> int:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_REQUEUE_LOCK,))
            dead = [
                rid
                for rid, host, pid, beat in self._db.execute(
                    "SELECT runner_id, host, pid, heartbeat FROM runners"
                ).fetchall()
                if rid != self.runner_id and runner_is_dead(host, pid, beat, self.stale_after)
            ]
            if dead:
                self._db.execute("DELETE FROM runners WHERE runner_id = ANY(%s)", (dead,))
            # Runs held by a runner that is gone (dead and deleted above, or never registered).
            cur = self._db.execute(
                "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
                "WHERE status='running' AND (runner IS NULL OR NOT EXISTS "
                "(SELECT 1 FROM runners w WHERE w.runner_id = runs.runner))"
            )
            return cur.rowcount

    def held_elsewhere(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        want = set(keys)
        return [
            held_row(key, host, pid, beat, self.stale_after)
            for key, host, pid, beat in self._db.execute(
                "SELECT r.run_key, w.host, w.pid, w.heartbeat FROM runs r LEFT JOIN runners w "
                "ON r.runner = w.runner_id WHERE r.status='running' AND "
                "(r.runner IS NULL OR r.runner != %s)",
                (self.runner_id or "",),
            ).fetchall()
            if key in want
        ]

    def claim(self, keys: Iterable[str] | None = None, limit: int = 1) -> list[StoredRun]:
        if self.runner_id is None:
            raise RuntimeError("register_runner() first")
        if limit < 1:
            return []
        where, params = "status='pending'", []
        if keys is not None:
            where += " AND run_key = ANY(%s)"
            params.append(list(keys))
        cols = ", ".join(f"r.{c.strip()}" for c in RUN_COLUMNS.split(","))
        rows = self._db.execute(
            f"WITH c AS (SELECT run_key FROM runs WHERE {where} ORDER BY ord LIMIT %s "
            "FOR UPDATE SKIP LOCKED) "
            "UPDATE runs r SET status='running', runner=%s, host=%s, started_at=%s, "
            f"attempts=r.attempts+1 FROM c WHERE r.run_key=c.run_key RETURNING {cols}, r.ord",
            [*params, limit, self.runner_id, this_host(), time.time()],
        ).fetchall()
        return [row_to_run(row[:-1]) for row in sorted(rows, key=lambda r: r[-1])]

    def _finish(
        self, run_key: str, status: str, record: dict | None, error: str | None, host: str | None
    ) -> bool:
        cur = self._db.execute(
            "UPDATE runs SET status=%s, record=%s, error=%s, finished_at=%s, "
            "host=COALESCE(%s, host) WHERE run_key=%s AND status='running' AND runner=%s",
            (status, dump_record(record), _text(error), time.time(), host, run_key, self.runner_id),
        )
        return cur.rowcount == 1

    def release(self, run_key: str) -> None:
        self._db.execute(
            "UPDATE runs SET status='pending', runner=NULL, started_at=NULL "
            "WHERE run_key=%s AND status='running' AND runner=%s",
            (run_key, self.runner_id),
        )

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        return self._db.execute(
            "UPDATE runs SET status='pending', runner=NULL, error=NULL WHERE status = ANY(%s)",
            (list(statuses),),
        ).rowcount

    def get(self, run_key: str) -> StoredRun:
        row = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key=%s", (run_key,)
        ).fetchone()
        if row is None:
            raise KeyError(run_key)
        return row_to_run(row)

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        if keys is None:
            rows = self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs ORDER BY ord, run_key"
            ).fetchall()
            yield from (row_to_run(r) for r in rows)
            return
        keys = list(keys)
        found = {
            r[0]: r
            for r in self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key = ANY(%s)", (keys,)
            ).fetchall()
        }
        yield from (row_to_run(found[k]) for k in keys if k in found)

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        if keys is None:
            rows = self._db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status")
        else:
            rows = self._db.execute(
                "SELECT status, COUNT(*) FROM runs WHERE run_key = ANY(%s) GROUP BY status",
                (list(keys),),
            )
        for status, n in rows.fetchall():
            out[status] = n
        return out


def _text(s: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters (a traceback might)."""
    return None if s is None else s.replace("\x00", "\\x00")
