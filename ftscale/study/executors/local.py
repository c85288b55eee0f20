"""Local back end: N worker processes on this machine, each with its own thread count.

Workers are spawned (not forked: a forked copy of a process that already ran torch can deadlock)
and die with the driver (PR_SET_PDEATHSIG on Linux), so a killed runner leaves no orphan still
computing. A worker that dies hard (segfault, out of memory) fails only the runs it held; the pool
is rebuilt and the study goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ftscale.study.executors.base import Executor, Outcome, execute


def default_workers() -> int:
    """One worker per available core (measured: one single-thread run per core beats one
    two-thread run for the family's small models; see docs/study.md)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["FTSCALE_THREADS"] = str(threads)
    # Loading-weights progress bars from every worker would garble the study's progress line.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:  # die with the driver
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the driver died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
        pass


class LocalExecutor(Executor):
    """Run specs in ``workers`` spawned processes with ``threads`` intra-op threads each."""

    def __init__(self, workers: int | None = None, threads: int = 1, **_: Any):
        self.capacity = workers or default_workers()
        self.threads = threads
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future, str] = {}

    def start(self) -> None:
        self._pool = cf.ProcessPoolExecutor(
            max_workers=self.capacity,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads,),
        )

    def submit(self, run_key: str, spec: dict[str, Any]) -> None:
        assert self._pool is not None, "start() first"
        self._futures[self._pool.submit(execute, spec)] = run_key

    def wait(self, timeout: float | None = None) -> list[tuple[str, Outcome]]:
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        out = []
        broken = False
        for fut in done:
            key = self._futures.pop(fut)
            try:
                out.append((key, fut.result()))
            except BrokenProcessPool:
                broken = True
                out.append(
                    (key, Outcome("failed", None, "worker process died (killed or crashed)"))
                )
            except Exception as exc:  # e.g. the outcome could not be unpickled
                out.append((key, Outcome("failed", None, f"{type(exc).__name__}: {exc}")))
        if broken:
            # Every future of a broken pool fails; report them now and start a fresh pool.
            for fut, key in list(self._futures.items()):
                out.append(
                    (key, Outcome("failed", None, "worker process died (killed or crashed)"))
                )
                del self._futures[fut]
            self._pool.shutdown(wait=False, cancel_futures=True)
            self.start()
        return out

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._futures.clear()
