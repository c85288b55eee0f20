"""The executor interface and the function every back end runs for one run."""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass
from typing import Any

#: An outcome status no run records: the worker (its machine, a Ray node) was lost mid-run, so
#: the runner gives the run back to the queue.
LOST = "lost"

#: Test and extension hook: "module:function" taking a run spec and returning a record dict,
#: used instead of the finetuning engine (tests inject failing or slow runs through it).
RUN_FN_ENV = "FTSCALE_RUN_FN"


@dataclass
class Outcome:
    """What a worker returns for one run."""

    status: str  # done | failed | diverged, or LOST
    record: dict[str, Any] | None
    error: str | None
    #: where the run ran (host name; with a node id for a cluster executor); None: the runner's
    host: str | None = None


def _run_fn():
    target = os.environ.get(RUN_FN_ENV)
    if target:
        module, func = target.split(":")
        return getattr(importlib.import_module(module), func)
    from ftscale.study.runfn import finetune_run

    return finetune_run


def execute(spec: dict[str, Any]) -> Outcome:
    """Run one spec in this process; never raises for a failing run."""
    try:
        record = _run_fn()(spec)
    except Exception as exc:  # a crashing run is recorded and the study goes on
        tb = traceback.format_exc(limit=8)
        return Outcome("failed", None, f"{type(exc).__name__}: {exc}\n{tb}")
    status = record.get("status", "done")
    if status not in ("done", "diverged", "failed"):
        status = "done"
    return Outcome(status, record, record.get("error"))


class Executor:
    """Back-end interface. ``submit`` hands a run over; ``wait`` returns finished ones."""

    #: how many runs may be in flight at once
    capacity: int = 1

    def start(self) -> None:
        """Acquire workers (processes, a Ray connection)."""

    def submit(self, run_key: str, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[tuple[str, Outcome]]:
        """Block until at least one submitted run finished (or ``timeout`` seconds passed) and
        return the finished ones as (run_key, outcome)."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release workers; runs still in flight are abandoned."""
