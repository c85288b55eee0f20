"""Array jobs: several `ftscale study run` processes on one PostgreSQL store, some killed with
SIGKILL and restarted: every run finishes exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from ftscale.study.storage import open_store

STUDY = """
[study]
name = "array"
tasks = ["translate-en-de"]
factor = "model_size"
models = ["sim-1e5", "sim-1e6", "sim-1e7"]
methods = ["fmt", "lora"]
seeds = 3

[data_sizes]
fmt = [300, 1000, 3000]
lora = [100, 300, 1000]

[training]
steps = 10
"""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ftscale", *args]


@pytest.mark.slow
def test_four_runners_sigkilled_and_restarted_finish_every_run_once(
    tmp_path, postgres_url, monkeypatch
):
    log = tmp_path / "exec.log"
    env = {
        **os.environ,
        "FTSCALE_RUN_FN": "ftscale.testing.simulated:simulated_run",
        "FTSCALE_SIM_LOG": str(log),
        "FTSCALE_SIM_SLEEP": "0.25",
    }
    study = tmp_path / "array.toml"
    study.write_text(STUDY)
    cmd = _cli("study", "run", str(study), "--store", postgres_url, "--workers", "1")
    cmd += ["--no-progress", "--json"]

    def start() -> subprocess.Popen:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    procs = [start() for _ in range(4)]

    def holders() -> set[int]:
        """pids of the runners holding a run now."""
        try:
            with open_store(postgres_url, must_exist=True) as store:
                keys = [r.run_key for r in store.runs()]
                return {h["pid"] for h in store.held_elsewhere(keys)}
        except Exception:  # the first runner has not created the tables yet
            return set()

    # Kill two runners while each holds a run in flight, and start two in their place: the new
    # ones requeue the dead ones' runs (same host, pid gone).
    deadline = time.time() + 120
    while not {procs[0].pid, procs[1].pid} <= holders() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a few runs finish first
    kills = 0
    for p in procs[:2]:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            kills += 1
            p.wait()
    assert kills == 2, "the runners finished before the kill: make the study longer"
    killed = {p.pid for p in procs[:2]}
    with open_store(postgres_url) as store:  # runs the dead runners held when killed
        orphans = {
            h["run_key"] for h in store.held_elsewhere(r.run_key for r in store.runs())
            if h["pid"] in killed
        }  # fmt: skip
    procs += [start(), start()]
    outs = []
    for p in procs[2:]:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
        outs.append(json.loads(out))

    with open_store(postgres_url) as store:
        runs = list(store.runs())
        counts = store.counts()
    planned = 3 * 2 * 3 * 3
    assert len(runs) == planned and counts["done"] == planned, counts  # 0 lost
    assert all(r.record is not None and r.host for r in runs)
    # the killed runners' runs went back to the queue and were taken again (a surviving runner
    # may requeue them before the snapshot above is read, so `orphans` may be empty)
    again = {r.run_key for r in runs if r.attempts == 2}
    assert 1 <= len(again) <= kills and orphans <= again
    executed = Counter(log.read_text().splitlines())
    assert len(executed) == planned  # every run executed ...
    # ... and again only if it was in flight in a killed runner (one worker each): 0 duplicated
    # records, at most `kills` repeated executions.
    assert sum(executed.values()) - planned <= kills
    assert max(executed.values()) <= 2
    assert sum(o["ran"] for o in outs) <= planned
    # status and export read the same store
    status = subprocess.run(
        _cli("study", "status", str(study), "--store", postgres_url, "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["totals"]["done"] == planned and doc["store"] == postgres_url
    assert sum(h["done"] for h in doc["hosts"]) == planned
    export = subprocess.run(
        _cli("study", "export", str(study), "--store", postgres_url, "--format", "csv"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.strip().splitlines()) == planned + 1
