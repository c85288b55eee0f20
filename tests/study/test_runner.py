import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_study

HASHES = {"sim-task": "fixture"}


def test_runs_everything_then_skips(tmp_path, sim_env, sim_study):
    db = tmp_path / "s.db"
    s = run_study(sim_study, db, workers=2, progress=False, data_hashes=HASHES)
    assert s.planned == 2 * 2 * 3 * 2
    assert s.counts["done"] == s.planned and s.ran == s.planned
    again = run_study(sim_study, db, workers=2, progress=False, data_hashes=HASHES)
    assert again.ran == 0 and again.skipped == s.planned
    executed = Counter(sim_env.read_text().splitlines())
    assert len(executed) == s.planned and set(executed.values()) == {1}


def test_crashing_run_is_recorded_and_study_goes_on(tmp_path, sim_env):
    study = parse_study(simulated_study(models=("sim-1e5", "sim-crash")))
    db = tmp_path / "s.db"
    s = run_study(study, db, workers=2, progress=False, data_hashes=HASHES)
    assert s.counts["failed"] == s.planned // 2
    assert s.counts["done"] == s.planned // 2
    with RunStore(db) as store:
        failed = [r for r in store.runs() if r.status == "failed"]
        assert all("simulated crash" in r.error for r in failed)
    # --retry-failed runs them again (they fail again, deterministically)
    s2 = run_study(study, db, workers=2, progress=False, data_hashes=HASHES, retry_failed=True)
    assert s2.ran == s.planned // 2


def test_diverged_runs_are_marked(tmp_path, sim_env):
    study = parse_study(simulated_study(models=("sim-1e5", "sim-diverge")))
    s = run_study(study, tmp_path / "s.db", workers=1, progress=False, data_hashes=HASHES)
    assert s.counts["diverged"] == s.planned // 2


_DRIVER = textwrap.dedent(
    """
    from ftscale.testing.simulated import simulated_study
    from ftscale.study.runner import run_study
    from ftscale.study.spec import parse_study
    if __name__ == "__main__":
        study = parse_study(simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=2))
        run_study(study, {db!r}, workers=2, progress=False, data_hashes={{"sim-task": "fixture"}})
    """
)


def _driver(tmp_path, db):
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER.format(db=str(db)))
    return [sys.executable, str(script)]


@pytest.mark.slow
def test_sigkill_mid_study_then_rerun(tmp_path, sim_env, monkeypatch):
    monkeypatch.setenv("FTSCALE_SIM_SLEEP", "0.3")
    db = tmp_path / "s.db"
    cmd = _driver(tmp_path, db)
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some, not all, runs are done
        time.sleep(0.2)
        if db.exists():
            with RunStore(db) as store:
                if store.counts()["done"] >= 6:
                    break
    os.kill(proc.pid, signal.SIGKILL)  # the driver only: its workers must die with it
    proc.wait()
    with RunStore(db) as store:
        done_before = {r.run_key for r in store.runs() if r.status == "done"}
        planned = len(list(store.runs()))
    assert 0 < len(done_before) < planned
    subprocess.run(cmd, check=True, timeout=120)
    with RunStore(db) as store:
        runs = list(store.runs())
        assert len(runs) == planned
        assert all(r.status == "done" for r in runs)
        done_keys = {
            (r.spec["method"], r.spec["model"], r.spec["data_size"], r.spec["seed"])
            for r in runs
            if r.run_key in done_before
        }
    executed = Counter(tuple(line.split()) for line in sim_env.read_text().splitlines())
    # Runs finished before the kill never ran again; runs in flight at the kill ran at most twice.
    for method, model, d, seed in done_keys:
        assert executed[(method, model, str(d), str(seed))] == 1
    assert max(executed.values()) <= 2
    assert len(executed) == planned


@pytest.mark.slow
def test_two_runners_never_run_the_same_run(tmp_path, sim_env, monkeypatch):
    monkeypatch.setenv("FTSCALE_SIM_SLEEP", "0.1")
    db = tmp_path / "s.db"
    cmd = _driver(tmp_path, db)
    a = subprocess.Popen(cmd)
    b = subprocess.Popen(cmd)
    assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0
    executed = Counter(sim_env.read_text().splitlines())
    with RunStore(db) as store:
        assert store.counts()["done"] == len(list(store.runs())) == len(executed)
    assert set(executed.values()) == {1}
