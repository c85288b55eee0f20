"""One conformance suite for every run-store back end: SQLite (a bare path and a sqlite:/// URL),
PostgreSQL (a real server started by the tests), in-memory."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import uuid

import pytest

from ftscale.study.storage import open_store, store_exists
from ftscale.study.storage.memory import drop_memory_store

BACKENDS = ["path", "sqlite-url", "postgresql", "memory"]


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    kind = request.param
    if kind == "path":
        yield str(tmp_path / "s.db")
    elif kind == "sqlite-url":
        yield f"sqlite:///{tmp_path / 's.db'}"  # sqlite:////abs/path
    elif kind == "memory":
        name = f"conf-{uuid.uuid4().hex}"
        yield f"memory://{name}"
        drop_memory_store(name)
    else:
        yield request.getfixturevalue("postgres_url")


def _runs(n, start=0):
    return [(f"k{i}", {"i": i, "nested": {"x": [1, 2]}}) for i in range(start, start + n)]


def test_new_store_exists_after_open(url):
    assert not store_exists(url)
    with open_store(url):
        pass
    assert store_exists(url)
    with open_store(url, must_exist=True) as store:
        assert store.counts()["pending"] == 0


def test_add_runs_is_idempotent_and_keeps_plan_order(url):
    with open_store(url) as store:
        assert store.add_runs(_runs(5)) == 5
        assert store.add_runs(_runs(7)) == 2
        assert store.add_runs([]) == 0
        assert store.counts()["pending"] == 7
        assert [r.run_key for r in store.runs()] == [f"k{i}" for i in range(7)]
        assert [r.run_key for r in store.runs(["k3", "nope", "k1"])] == ["k3", "k1"]
        assert store.get("k2").spec == {"i": 2, "nested": {"x": [1, 2]}}
        with pytest.raises(KeyError):
            store.get("nope")


def test_meta_round_trip(url):
    with open_store(url) as store:
        assert store.get_meta("study", "none") == "none"
        store.set_meta("study", {"name": "s", "n": 1})
        store.set_meta("study", {"name": "t", "n": 2})
    with open_store(url) as store:
        assert store.get_meta("study") == {"name": "t", "n": 2}


def test_claim_finish_retry_cycle(url):
    with open_store(url) as store:
        store.add_runs(_runs(3))
        with pytest.raises(RuntimeError):
            store.claim()
        store.register_runner()
        got = store.claim(limit=2)
        assert [r.run_key for r in got] == ["k0", "k1"]
        assert all(r.status == "running" and r.attempts == 1 and r.host for r in got)
        assert store.finish("k0", "done", {"loss": 1.5, "nan": float("nan")}, host="node-a")
        assert store.finish("k1", "failed", error="boom")
        assert not store.finish("k1", "done", {"loss": 1.0}), "a run is recorded once"
        with pytest.raises(ValueError):
            store.finish("k2", "running")
        c = store.counts()
        assert (c["done"], c["failed"], c["pending"], c["running"]) == (1, 1, 1, 0)
        assert store.counts(["k0", "k2"]) == {**dict.fromkeys(c, 0), "done": 1, "pending": 1}
        k0 = store.get("k0")
        assert k0.record["loss"] == 1.5 and k0.record["nan"] != k0.record["nan"]
        assert k0.host == "node-a" and k0.finished_at >= k0.started_at >= k0.created_at
        assert store.get("k1").error == "boom" and store.get("k1").host == got[1].host
        assert store.retry() == 1
        assert store.get("k1").status == "pending" and store.get("k1").error is None
        [again] = store.claim(["k1"], limit=5)
        assert again.attempts == 2


def test_claim_respects_keys_and_limit(url):
    with open_store(url) as store:
        store.add_runs(_runs(6))
        store.register_runner()
        assert store.claim(limit=0) == []
        got = store.claim(["k5", "k4", "k1"], limit=2)
        assert sorted(r.run_key for r in got) == ["k1", "k4"]  # plan order among the keys
        assert [r.run_key for r in store.claim(["k1", "k5"], limit=5)] == ["k5"]


def test_release_gives_a_run_back(url):
    with open_store(url) as store:
        store.add_runs(_runs(2))
        store.register_runner()
        [run] = store.claim(limit=1)
        store.release(run.run_key)
        assert store.get(run.run_key).status == "pending"
        assert not store.finish(run.run_key, "done", {}), "released: no longer held"


def test_live_runner_keeps_its_runs(url):
    a = open_store(url)
    a.add_runs(_runs(2))
    a.register_runner()
    [run] = a.claim(limit=1)
    b = open_store(url)
    b.register_runner()
    assert b.get(run.run_key).status == "running"
    assert [r.run_key for r in b.claim(limit=5)] == ["k1"]
    assert not b.finish(run.run_key, "done", {}), "b does not hold a's run"
    [held] = b.held_elsewhere(["k0", "k1"])
    assert held["run_key"] == run.run_key and held["pid"] == os.getpid()
    assert 0 < held["requeue_in"] <= b.stale_after
    assert a.held_elsewhere(["k0", "k1"])[0]["run_key"] == "k1"
    a.close()
    # a closed cleanly without finishing: its run is an orphan, requeued by b
    assert b.requeue_orphans() == 1 and b.get(run.run_key).status == "pending"
    b.close()


def test_stale_heartbeat_requeues(url):
    a = open_store(url, stale_after=0.2)
    a.add_runs(_runs(1))
    a.register_runner()
    a.claim(limit=1)
    import time

    time.sleep(0.4)  # a is alive but silent longer than stale_after: presumed dead
    b = open_store(url, stale_after=0.2)
    b.register_runner()  # requeues on start
    assert [r.run_key for r in b.claim(limit=1)] == ["k0"]
    assert not a.finish("k0", "done", {}), "the presumed-dead runner's outcome is dropped"
    assert b.finish("k0", "done", {"loss": 1.0})
    assert b.get("k0").attempts == 2
    a.close()
    b.close()


def _claim_and_die(url):
    store = open_store(url)
    store.register_runner()
    store.claim(limit=1)
    os._exit(0)  # no close(), no cleanup: as after SIGKILL


@pytest.mark.parametrize("url", [b for b in BACKENDS if b != "memory"], indirect=True)
def test_orphans_of_a_dead_process_are_requeued(url):
    """(Durable back ends: a memory store lives in one process.)"""
    with open_store(url) as store:
        store.add_runs(_runs(2))
        survivor = open_store(url)
        survivor.register_runner()
        p = mp.get_context("spawn").Process(target=_claim_and_die, args=(url,))
        p.start()
        p.join(60)
        assert store.counts()["running"] == 1 and survivor.held_elsewhere(["k0", "k1"])
        assert survivor.requeue_orphans() == 1
        assert store.counts()["pending"] == 2 and not survivor.held_elsewhere(["k0", "k1"])
        survivor.close()


def test_concurrent_claims_never_share_a_run(url):
    """8 runners (threads, each with its own connection) claim 200 runs at once."""
    with open_store(url) as store:
        store.add_runs(_runs(200))
    taken: list[list[str]] = [[] for _ in range(8)]
    barrier = threading.Barrier(8)

    def work(i):
        with open_store(url) as store:
            store.register_runner()
            barrier.wait()
            while True:
                got = store.claim(limit=3)
                if not got:
                    return
                for r in got:
                    assert store.finish(r.run_key, "done", {"by": i})
                    taken[i].append(r.run_key)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    flat = [k for t in taken for k in t]
    assert len(flat) == len(set(flat)) == 200
    with open_store(url) as store:
        assert store.counts()["done"] == 200
        assert all(r.attempts == 1 for r in store.runs())
