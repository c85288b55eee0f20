"""The storage protocol every run-store back end implements (in the manner of Optuna's
``BaseStorage``), and what the back ends share.

A study's runs are rows keyed by ``run_key``. A run moves ``pending -> running -> done | failed |
diverged``. The guarantees every back end gives (the conformance suite in
``tests/study/test_storage_conformance.py`` checks each one):

- **claims are exclusive**: :meth:`RunStorage.claim` takes a ``pending`` run and marks it
  ``running`` for this runner in one atomic step, so two runners on one store, in one process or on
  two machines, never take the same run;
- **an outcome is recorded once**: :meth:`RunStorage.finish` records a result only while this
  runner still holds the run, so a run requeued and taken by another runner is never recorded
  twice;
- **leases**: a runner registers with its host, pid and a heartbeat
  (:meth:`RunStorage.register_runner`, :meth:`RunStorage.heartbeat`). A runner is presumed dead
  when its process is gone (same host) or its heartbeat is older than ``stale_after`` seconds
  (any host); its ``running`` runs go back to ``pending`` (:meth:`RunStorage.requeue_orphans`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from ftscale.errors import UserError

STATUSES = ("pending", "running", "done", "failed", "diverged")
#: Final states: a run in one of these is never run again unless explicitly retried.
FINISHED = ("done", "failed", "diverged")

#: Seconds after which a runner whose heartbeat has not moved is presumed dead.
DEFAULT_STALE_AFTER = 600.0


@dataclass(frozen=True)
class StoredRun:
    """One run of the store. ``host``: where it ran (or runs): the runner's host, or the worker
    node's for an executor that spreads runs over machines."""

    run_key: str
    spec: dict[str, Any]
    status: str
    record: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    host: str | None = None


class RunStorage:
    """The interface the runner, the adaptive design, the report and the CLI use.

    ``location`` is what the user gave (a path or a URL; never a password: back ends redact it).
    """

    location: str = ""
    stale_after: float = DEFAULT_STALE_AFTER
    runner_id: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Unregister this runner (if registered) and release the connection."""
        raise NotImplementedError

    def __enter__(self) -> RunStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta --------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON-able) under ``key``."""
        raise NotImplementedError

    def get_meta(self, key: str, default: Any = None) -> Any:
        raise NotImplementedError

    # -- planning ----------------------------------------------------------------------------
    def add_runs(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        """Insert planned runs (run_key, spec) that are not stored yet, in plan order; returns
        how many were new."""
        raise NotImplementedError

    # -- runners and claims --------------------------------------------------------------------
    def register_runner(self) -> str:
        """Register this process as a runner and requeue runs orphaned by dead runners."""
        raise NotImplementedError

    def heartbeat(self) -> None:
        """Tell the store this runner is alive."""
        raise NotImplementedError

    def requeue_orphans(self) -> int:
        """Return runs held by dead runners to ``pending``; returns how many."""
        raise NotImplementedError

    def held_elsewhere(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        """Runs among ``keys`` marked running by another runner: ``[{"run_key", "host", "pid",
        "heartbeat_age" (s), "requeue_in" (s until the store presumes it dead; 0 if it already
        would)}]``."""
        raise NotImplementedError

    def claim(self, keys: Iterable[str] | None = None, limit: int = 1) -> list[StoredRun]:
        """Atomically take up to ``limit`` pending runs (of ``keys``, in plan order) for this
        runner."""
        raise NotImplementedError

    def finish(
        self,
        run_key: str,
        status: str,
        record: dict[str, Any] | None = None,
        error: str | None = None,
        host: str | None = None,
    ) -> bool:
        """Record a claimed run's outcome (``host``: where it ran, if not this runner's host).
        Returns False, and drops the outcome, if this runner no longer holds the run."""
        check_final(status)
        return self._finish(run_key, status, record, error, host)

    def _finish(
        self, run_key: str, status: str, record: dict[str, Any] | None, error: str | None,
        host: str | None,
    ) -> bool:  # fmt: skip
        """:meth:`finish` once ``status`` is known to be final."""
        raise NotImplementedError

    def release(self, run_key: str) -> None:
        """Give a claimed run back to ``pending`` without recording an outcome."""
        raise NotImplementedError

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        """Put runs in the given final states back to ``pending``; returns how many."""
        raise NotImplementedError

    # -- reading -----------------------------------------------------------------------------
    def get(self, run_key: str) -> StoredRun:
        """The run ``run_key``; KeyError if it is not stored."""
        raise NotImplementedError

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        """All stored runs in plan order (or those of ``keys``, in that order)."""
        raise NotImplementedError

    def counts(self, keys: Iterable[str] | None = None) -> dict[str, int]:
        """How many runs (of ``keys``) are in each status."""
        out = dict.fromkeys(STATUSES, 0)
        for run in self.runs(keys):
            out[run.status] += 1
        return out


# -- helpers the back ends share -------------------------------------------------------------
def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is alive (a zombie counts as dead)."""
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


def runner_is_dead(host: str, pid: int, heartbeat: float, stale_after: float) -> bool:
    """A runner is dead if its process is gone (on this host) or its heartbeat is stale."""
    return (host == this_host() and not pid_alive(pid)) or time.time() - heartbeat > stale_after


def held_row(
    run_key: str, host: str | None, pid: int | None, beat: float | None, stale_after: float
) -> dict[str, Any]:
    """One entry of :meth:`RunStorage.held_elsewhere`."""
    age = None if beat is None else max(0.0, time.time() - beat)
    return {
        "run_key": run_key,
        "host": host,
        "pid": pid,
        "heartbeat_age": age,
        "requeue_in": 0.0 if age is None else max(0.0, stale_after - age),
    }


def check_final(status: str) -> None:
    if status not in FINISHED:
        raise ValueError(f"not a final status: {status}")


def dump_record(record: dict[str, Any] | None) -> str | None:
    return None if record is None else json.dumps(record, sort_keys=True, allow_nan=True)


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


#: The columns every SQL back end selects for a :class:`StoredRun`: its fields, in order.
RUN_COLUMNS = ", ".join(f.name for f in fields(StoredRun))


def row_to_run(row: tuple) -> StoredRun:
    """A :class:`StoredRun` from a row of :data:`RUN_COLUMNS` (spec and record as JSON text)."""
    run = dict(zip(RUN_COLUMNS.split(", "), row, strict=True))
    for what in ("spec", "record"):
        run[what] = _json_field(run["run_key"], what, run[what])
    return StoredRun(**run)
