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
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ftscale.errors import UserError
from ftscale.study.storage.base import (
    DEFAULT_STALE_AFTER,
    RUN_COLUMNS,
    StoredRun,
    row_to_run,
    this_host,
)
from ftscale.study.storage.sql import SCHEMA_VERSION, SQLStore, parse_version, schema, tally

_SCHEMA = schema("DOUBLE PRECISION")
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


class PostgresStore(SQLStore):
    """A store in the PostgreSQL database at ``url`` (tables created on first use)."""

    PARAM = "%s"

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
        version = parse_version(row)
        if version != SCHEMA_VERSION:
            self._db.close()
            raise UserError(
                f"store schema version {version}: this ftscale reads version {SCHEMA_VERSION} "
                "(a store of a newer ftscale, or not an ftscale store)",
                path=self.location,
            )

    def _tx(self):
        return self._db.transaction()

    def _is_closed(self) -> bool:
        return self._db.closed

    def _text(self, s: str | None) -> str | None:
        """PostgreSQL text cannot hold NUL characters (a traceback might)."""
        return None if s is None else s.replace("\x00", "\\x00")

    def _lock_requeue(self) -> None:
        self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_REQUEUE_LOCK,))

    def _in(self, column: str, values: list) -> tuple[str, list]:
        return f"{column} = ANY(?)", [values]

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

    def _runs_of(self, keys: Iterable[str]) -> Iterator[StoredRun]:
        keys = list(keys)
        found = {
            r[0]: r
            for r in self._db.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE run_key = ANY(%s)", (keys,)
            ).fetchall()
        }
        yield from (row_to_run(found[k]) for k in keys if k in found)

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        if keys is None:
            return super().counts()
        return tally(
            self._db.execute(
                "SELECT status, COUNT(*) FROM runs WHERE run_key = ANY(%s) GROUP BY status",
                (list(keys),),
            ).fetchall()
        )
