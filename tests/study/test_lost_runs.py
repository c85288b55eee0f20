"""A run whose worker is lost goes back to the queue; one lost again and again is recorded
failed (the runner's side of the Ray node-loss handling, with a fake executor)."""

from __future__ import annotations

from ftscale.study.executors.base import LOST, Executor, Outcome, execute
from ftscale.study.runner import MAX_LOST_ATTEMPTS, run_study
from ftscale.study.storage import open_store
from ftscale.study.storage.memory import drop_memory_store

HASHES = {"sim-task": "fixture"}


class FlakyNodes(Executor):
    """Runs in this process; loses each run whose seed is in ``lose`` (``times`` times)."""

    capacity = 2
    lost: dict[tuple, int] = {}
    times = 1

    def __init__(self, **_):
        self.done: list = []

    def submit(self, run_key, spec):
        ident = (spec["method"], spec["model"], spec["data_size"], spec["seed"])
        n = FlakyNodes.lost.get(ident, 0)
        if spec["seed"] == 0 and n < FlakyNodes.times:
            FlakyNodes.lost[ident] = n + 1
            self.done.append((run_key, Outcome(LOST, None, "NodeDiedError: node n1 died")))
        else:
            self.done.append((run_key, execute(spec)))

    def wait(self, timeout=None):
        out, self.done = self.done, []
        return out


def _run(monkeypatch, sim_study, times):
    from ftscale.study import executors

    monkeypatch.setitem(executors.EXECUTORS, "flaky", f"{__name__}:FlakyNodes")
    FlakyNodes.lost, FlakyNodes.times = {}, times
    drop_memory_store("lost")
    return run_study(
        sim_study, "memory://lost", backend="flaky", progress=False, data_hashes=HASHES
    )


def test_a_lost_run_goes_back_to_the_queue(monkeypatch, sim_env, sim_study):
    s = _run(monkeypatch, sim_study, times=1)
    assert s.counts["done"] == s.planned
    with open_store("memory://lost") as store:
        attempts = {r.spec["seed"]: set() for r in store.runs()}
        for r in store.runs():
            attempts[r.spec["seed"]].add(r.attempts)
    assert attempts == {0: {2}, 1: {1}}


def test_a_run_lost_too_often_is_failed(monkeypatch, sim_env, sim_study):
    s = _run(monkeypatch, sim_study, times=99)
    assert s.counts["failed"] == s.planned // 2 and s.counts["done"] == s.planned // 2
    with open_store("memory://lost") as store:
        failed = [r for r in store.runs() if r.status == "failed"]
    assert all(r.attempts == MAX_LOST_ATTEMPTS for r in failed)
    assert all(r.error.startswith(f"lost {MAX_LOST_ATTEMPTS} times") for r in failed)
    drop_memory_store("lost")
