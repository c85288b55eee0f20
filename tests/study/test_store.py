import multiprocessing as mp
import os
import sqlite3

import pytest

from ftscale.errors import UserError
from ftscale.study.store import RunStore


def _runs(n):
    return [(f"k{i}", {"i": i}) for i in range(n)]


def test_add_runs_is_idempotent(tmp_path):
    with RunStore(tmp_path / "s.db") as store:
        assert store.add_runs(_runs(5)) == 5
        assert store.add_runs(_runs(7)) == 2
        assert store.counts()["pending"] == 7
        assert [r.run_key for r in store.runs()][:3] == ["k0", "k1", "k2"]


def test_claim_finish_cycle(tmp_path):
    with RunStore(tmp_path / "s.db") as store:
        store.add_runs(_runs(3))
        store.register_runner()
        got = store.claim(limit=2)
        assert [r.run_key for r in got] == ["k0", "k1"]
        assert all(r.status == "running" and r.attempts == 1 for r in got)
        assert store.finish("k0", "done", {"loss": 1.5})
        assert store.finish("k1", "failed", error="boom")
        assert not store.finish("k1", "done", {"loss": 1.0}), "a run is recorded once"
        c = store.counts()
        assert (c["done"], c["failed"], c["pending"]) == (1, 1, 1)
        assert store.get("k0").record == {"loss": 1.5}
        assert store.get("k1").error == "boom"
        assert store.retry() == 1
        assert store.get("k1").status == "pending" and store.get("k1").error is None


def test_orphans_of_dead_runner_are_requeued(tmp_path):
    path = tmp_path / "s.db"
    with RunStore(path) as store:
        store.add_runs(_runs(2))
    # A runner in another process claims a run and dies without finishing it.
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_claim_and_die, args=(str(path),))
    p.start()
    p.join()
    with RunStore(path) as store:
        assert store.counts()["running"] == 1
        store.register_runner()
        assert store.counts()["running"] == 0
        assert store.counts()["pending"] == 2


def _claim_and_die(path):
    import os

    store = RunStore(path)
    store.register_runner()
    store.claim(limit=1)
    os._exit(0)  # no close(), no cleanup: as after SIGKILL


def test_live_runner_keeps_its_runs(tmp_path):
    path = tmp_path / "s.db"
    a = RunStore(path)
    a.add_runs(_runs(2))
    a.register_runner()
    [run] = a.claim(limit=1)
    b = RunStore(path)
    b.register_runner()
    assert b.get(run.run_key).status == "running"
    assert [r.run_key for r in b.claim(limit=5)] == ["k1"]
    # b is told who holds the other run and when it would be taken over (issue 17, defect 12)
    [held] = b.held_elsewhere(["k0", "k1"])
    assert held["run_key"] == run.run_key and held["pid"] == os.getpid()
    assert 0 < held["requeue_in"] <= b.stale_after
    assert a.held_elsewhere(["k0", "k1"])[0]["run_key"] == "k1"
    a.close()
    b.close()


def test_a_runner_takes_over_runs_of_one_that_died_after_it_started(tmp_path):
    path = tmp_path / "s.db"
    with RunStore(path) as store:
        store.add_runs(_runs(2))
    survivor = RunStore(path)
    survivor.register_runner()  # registered first: its start-up requeue saw nothing
    ctx = mp.get_context("spawn")
    p = ctx.Process(target=_claim_and_die, args=(str(path),))
    p.start()
    p.join()
    assert survivor.counts()["running"] == 1 and survivor.held_elsewhere(["k0", "k1"])
    assert survivor.requeue_orphans() == 1  # what run_study does before it stops
    assert survivor.counts()["pending"] == 2 and not survivor.held_elsewhere(["k0", "k1"])
    survivor.close()


def test_not_a_store_is_user_error(tmp_path):
    bad = tmp_path / "x.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a usable ftscale store"):
        RunStore(bad)
    with pytest.raises(UserError, match="directory"):
        RunStore(tmp_path)


def test_wal_mode(tmp_path):
    with RunStore(tmp_path / "s.db"):
        pass
    mode = sqlite3.connect(tmp_path / "s.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def _open_and_add(path, i, barrier):
    barrier.wait()
    with RunStore(path) as store:
        store.add_runs([(f"p{i}", {"i": i})])


def test_many_processes_creating_one_new_store_at_once(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(6)
    procs = [
        ctx.Process(target=_open_and_add, args=(str(tmp_path / "s.db"), i, barrier))
        for i in range(6)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    with RunStore(tmp_path / "s.db") as store:
        assert store.counts()["pending"] == 6


def _hold_write_lock(path, ready):
    import sqlite3
    import time

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO runs(run_key, ord, spec, created_at) VALUES ('held', 0, '{}', 0)")
    ready.set()
    time.sleep(1.0)
    db.execute("COMMIT")


def test_opening_a_store_while_another_runner_writes(tmp_path):
    path = tmp_path / "s.db"
    RunStore(path).close()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_write_lock, args=(str(path), ready))
    p.start()
    assert ready.wait(30)
    with RunStore(path) as store:  # waits for the writer instead of failing
        store.add_runs([("k", {})])
    p.join(30)
    with RunStore(path) as store:
        assert store.counts()["pending"] == 2
