"""The in-memory back end (``memory://NAME``), for tests and throw-away studies.

Stores live as long as the process; opening ``memory://NAME`` again in the same process finds
the same runs (the runner, the report and the CLI each open the store). Runners in one process
share it under a lock, with the same claim, lease and requeue rules as the durable back ends.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ftscale.study.storage.base import (
    DEFAULT_STALE_AFTER,
    RunStorage,
    StoredRun,
    held_row,
    runner_is_dead,
    this_host,
)


@dataclass
class _Data:
    lock: threading.RLock = field(default_factory=threading.RLock)
    meta: dict[str, str] = field(default_factory=dict)
    runs: dict[str, StoredRun] = field(default_factory=dict)  # insertion order = plan order
    holder: dict[str, str] = field(default_factory=dict)  # run_key -> runner_id while running
    runners: dict[str, tuple[str, int, float]] = field(default_factory=dict)  # id -> host,pid,beat


_STORES: dict[str, _Data] = {}
_STORES_LOCK = threading.Lock()


def memory_store_exists(name: str) -> bool:
    return name in _STORES


def drop_memory_store(name: str) -> None:
    """Forget the in-memory store ``name`` (tests)."""
    with _STORES_LOCK:
        _STORES.pop(name, None)


class MemoryStore(RunStorage):
    """A process-local store named ``name``."""

    def __init__(self, name: str, *, stale_after: float = DEFAULT_STALE_AFTER):
        self.location = f"memory://{name}"
        self.stale_after = stale_after
        self.runner_id = None
        with _STORES_LOCK:
            self._d = _STORES.setdefault(name, _Data())

    def close(self) -> None:
        with self._d.lock:
            if self.runner_id is not None:
                self._d.runners.pop(self.runner_id, None)
                self.runner_id = None

    def set_meta(self, key: str, value: Any) -> None:
        with self._d.lock:
            self._d.meta[key] = json.dumps(value, sort_keys=True)

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._d.lock:
            text = self._d.meta.get(key)
        return default if text is None else json.loads(text)

    def add_runs(self, runs: Iterable[tuple[str, dict[str, Any]]]) -> int:
        now, n = time.time(), 0
        with self._d.lock:
            for key, spec in runs:
                if key not in self._d.runs:
                    spec = json.loads(json.dumps(spec, sort_keys=True))  # as stored elsewhere
                    self._d.runs[key] = StoredRun(
                        key, spec, "pending", None, None, 0, now, None, None
                    )
                    n += 1
        return n

    def register_runner(self) -> str:
        self.runner_id = uuid.uuid4().hex
        with self._d.lock:
            self._d.runners[self.runner_id] = (this_host(), os.getpid(), time.time())
        self.requeue_orphans()
        return self.runner_id

    def heartbeat(self) -> None:
        with self._d.lock:
            if self.runner_id in self._d.runners:
                host, pid, _ = self._d.runners[self.runner_id]
                self._d.runners[self.runner_id] = (host, pid, time.time())

    def _to_pending(self, key: str) -> None:
        self._d.runs[key] = replace(self._d.runs[key], status="pending", started_at=None)
        self._d.holder.pop(key, None)

    def requeue_orphans(self) -> int:
        with self._d.lock:
            for rid, (host, pid, beat) in list(self._d.runners.items()):
                if rid != self.runner_id and runner_is_dead(host, pid, beat, self.stale_after):
                    del self._d.runners[rid]
            orphans = [
                k
                for k, r in self._d.runs.items()
                if r.status == "running" and self._d.holder.get(k) not in self._d.runners
            ]
            for key in orphans:
                self._to_pending(key)
            return len(orphans)

    def held_elsewhere(self, keys: Iterable[str]) -> list[dict[str, Any]]:
        want = set(keys)
        out = []
        with self._d.lock:
            for key, run in self._d.runs.items():
                rid = self._d.holder.get(key)
                if key in want and run.status == "running" and rid != self.runner_id:
                    host, pid, beat = self._d.runners.get(rid, (None, None, None))
                    out.append(held_row(key, host, pid, beat, self.stale_after))
        return out

    def claim(self, keys: Iterable[str] | None = None, limit: int = 1) -> list[StoredRun]:
        if self.runner_id is None:
            raise RuntimeError("register_runner() first")
        now, taken = time.time(), []
        with self._d.lock:
            want = None if keys is None else set(keys)
            for key, run in list(self._d.runs.items()):  # plan order
                if len(taken) >= limit:
                    break
                if run.status != "pending" or (want is not None and key not in want):
                    continue
                run = replace(
                    run, status="running", started_at=now, attempts=run.attempts + 1,
                    host=this_host(),
                )  # fmt: skip
                self._d.runs[key] = run
                self._d.holder[key] = self.runner_id
                taken.append(run)
        return taken

    def _finish(
        self, run_key: str, status: str, record: dict[str, Any] | None, error: str | None,
        host: str | None,
    ) -> bool:  # fmt: skip
        with self._d.lock:
            run = self._d.runs.get(run_key)
            if (
                run is None
                or run.status != "running"
                or self._d.holder.get(run_key) != (self.runner_id)
            ):
                return False
            if record is not None:
                record = json.loads(json.dumps(record, sort_keys=True, allow_nan=True))
            self._d.runs[run_key] = replace(
                run, status=status, record=record, error=error, finished_at=time.time(),
                host=host or run.host,
            )  # fmt: skip
            self._d.holder.pop(run_key, None)
            return True

    def release(self, run_key: str) -> None:
        with self._d.lock:
            run = self._d.runs.get(run_key)
            held = self._d.holder.get(run_key) == self.runner_id
            if run is not None and run.status == "running" and held:
                self._to_pending(run_key)

    def retry(self, statuses: Iterable[str] = ("failed", "diverged")) -> int:
        statuses = tuple(statuses)
        with self._d.lock:
            keys = [k for k, r in self._d.runs.items() if r.status in statuses]
            for key in keys:
                self._d.runs[key] = replace(self._d.runs[key], status="pending", error=None)
            return len(keys)

    def get(self, run_key: str) -> StoredRun:
        with self._d.lock:
            return self._d.runs[run_key]

    def runs(self, keys: Iterable[str] | None = None) -> Iterator[StoredRun]:
        with self._d.lock:
            if keys is None:
                found = list(self._d.runs.values())
            else:
                found = [self._d.runs[k] for k in keys if k in self._d.runs]
        yield from found
