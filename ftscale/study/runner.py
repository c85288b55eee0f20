"""The study driver: plan, sync the plan into the store, claim runs, dispatch them to an
executor, record outcomes. Only this process writes the store."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ftscale.study.executors import make_executor
from ftscale.study.executors.base import LOST, Outcome
from ftscale.study.plan import PlannedRun, plan_study
from ftscale.study.progress import Progress
from ftscale.study.spec import Study
from ftscale.study.storage import RunStorage, open_store

#: A run whose worker was lost this many times (attempts) is recorded failed, not requeued again.
MAX_LOST_ATTEMPTS = 3


def default_store_path(study: Study) -> Path:
    """``<study file's folder>/<study file's stem>.db`` (or ``<name>.db`` here): a SQLite store."""
    if study.path is not None:
        return study.path.with_suffix(".db")
    return Path(f"{study.name}.db")


@dataclass
class RunSummary:
    """What one ``run_study`` call did."""

    planned: int
    skipped: int  # already finished before this call
    ran: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Runs still marked running by other runners when this one stopped (store.held_elsewhere).
    held_elsewhere: list[dict[str, Any]] = field(default_factory=list)


def _run_event(
    counts: dict[str, int], total: int, finished_now: int, elapsed: float, last: str
) -> tuple[str, int, str]:
    """(the log line, runs finished, the bar's postfix) after a run of a study finished."""
    from ftscale.study.progress import format_seconds

    done = counts.get("done", 0)
    finished = done + counts.get("failed", 0) + counts.get("diverged", 0)
    remaining = total - finished
    eta = "?"
    if finished_now > 0 and remaining > 0:
        eta = format_seconds(elapsed / finished_now * remaining)
    elif remaining == 0:
        eta = format_seconds(0)
    postfix = " ".join(f"{k}={counts.get(k, 0)}" for k in ("done", "failed", "diverged", "running"))
    line = f"{finished}/{total} {postfix} elapsed={format_seconds(elapsed)} eta={eta}  last: {last}"
    return line, finished, postfix


def sync_plan(
    study: Study, store: RunStorage, runs: list[PlannedRun] | None = None
) -> list[PlannedRun]:
    """Insert the study's planned runs into the store (those not there yet)."""
    runs = plan_study(study) if runs is None else runs
    store.add_runs((r.run_key, r.spec) for r in runs)
    store.set_meta("study", {"name": study.name, "path": str(study.path) if study.path else None})
    return runs


def run_study(
    study: Study,
    store_path: str | Path | None = None,
    *,
    backend: str = "local",
    workers: int | None = None,
    threads: int = 1,
    retry_failed: bool = False,
    address: str | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
    executor_kwargs: dict[str, Any] | None = None,
    data_hashes: dict[str, str] | None = None,
    only: set[str] | None = None,
) -> RunSummary:
    """Run every planned run of ``study`` that is not finished yet (of those whose run keys are
    in ``only``, when given: the adaptive design runs a chosen subset; every planned run is
    still synced into the store, so a later full run finds the rest pending).

    ``store_path`` is a store location (a path, ``sqlite:///PATH``, ``postgresql://...``,
    ``memory://NAME``: :func:`ftscale.study.storage.open_store`). Finished runs (done, failed,
    diverged) are skipped; ``retry_failed`` puts failed and diverged runs back first. Runs of this
    study left ``running`` by a runner that died are requeued; runs whose worker node was lost go
    back to the queue.
    """
    from ftscale.study.check import check_study_resources

    t0 = time.monotonic()
    check_study_resources(study)  # before the store is created or anything runs
    store = open_store(store_path or default_store_path(study))
    try:
        runs = sync_plan(study, store, plan_study(study, data_hashes))
        keys = [r.run_key for r in runs if only is None or r.run_key in only]
        if retry_failed:
            store.retry()
        store.register_runner()
        counts = store.counts(keys)
        pending = counts["pending"]
        summary = RunSummary(planned=len(keys), skipped=len(keys) - pending - counts["running"])
        if pending == 0:
            summary.counts = counts
            summary.held_elsewhere = store.held_elsewhere(keys)
            summary.seconds = time.monotonic() - t0
            return summary

        executor = make_executor(
            backend, workers=workers, threads=threads, address=address, **(executor_kwargs or {})
        )
        executor.start()
        bar = Progress(
            len(keys),
            desc=study.name,
            unit="run",
            initial=summary.skipped,
            stream=stream,
            enabled=progress,
        )
        t_run = time.monotonic()
        in_flight: set[str] = set()
        finished_now = 0
        try:
            while True:
                free = executor.capacity - len(in_flight)
                if free > 0:
                    for run in store.claim(keys, limit=free):
                        executor.submit(run.run_key, run.spec)
                        in_flight.add(run.run_key)
                if not in_flight:
                    # Nothing pending for us; a runner that died meanwhile leaves its runs
                    # `running`: hand them back and take them before stopping.
                    if store.requeue_orphans():
                        continue
                    break  # other live runners may hold the rest
                for key, outcome in executor.wait(timeout=30.0):
                    in_flight.discard(key)
                    if outcome.status == LOST:
                        # The worker's machine went away mid-run (a Ray node lost): the run goes
                        # back to the queue, unless it was lost too often to be the machine's fault.
                        if store.get(key).attempts < MAX_LOST_ATTEMPTS:
                            store.release(key)
                            continue
                        outcome = Outcome(
                            "failed",
                            None,
                            f"lost {MAX_LOST_ATTEMPTS} times (last: {outcome.error})",
                            outcome.host,
                        )
                    store.finish(key, outcome.status, outcome.record, outcome.error, outcome.host)
                    finished_now += 1
                    summary.ran += 1
                    spec = store.get(key).spec
                    line, finished, postfix = _run_event(
                        store.counts(keys),
                        len(keys),
                        finished_now,
                        time.monotonic() - t_run,
                        f"{spec['method']} {spec['model']} D={spec['data_size']} "
                        f"seed={spec['seed']}: {outcome.status}",
                    )
                    bar.event(line, n=finished, postfix=postfix)
                store.heartbeat()
        except BaseException:
            for key in in_flight:  # give them back (Ctrl-C); a SIGKILL never gets here
                store.release(key)
            raise
        finally:
            executor.shutdown()
            bar.close()
        summary.counts = store.counts(keys)
        summary.held_elsewhere = store.held_elsewhere(keys)
        summary.seconds = time.monotonic() - t0
        return summary
    finally:
        store.close()
