"""The live view's state (``ftscale study serve``) without a browser: progress per cell, hosts,
failures and ETA from the store, the points, a refit when runs finish, the JSON endpoint and the
command line's errors. The page itself is tested in Chromium (test_browser.py)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from ftscale.report.live import LiveStudy, live_points, progress
from ftscale.report.serve import LiveServer
from ftscale.study.plan import plan_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_run, simulated_study

HASHES = {"sim-task": "fixture"}


def live_study():
    d = simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=1)
    d["fit"] = {"bootstrap": 5}
    return parse_study(d)


def finish_runs(store: RunStore, n: int, fail: bool = False) -> list[str]:
    """Claim and finish ``n`` pending runs in plan order, as a runner does."""
    if store.runner_id is None:
        store.register_runner()
    done = []
    for run in store.claim(limit=n):
        if fail:
            store.finish(run.run_key, "failed", error="Traceback ...\nRuntimeError: out of memory")
        else:
            store.finish(run.run_key, "done", record=simulated_run(run.spec))
        done.append(run.run_key)
    return done


def wait_for(cond, timeout: float = 10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met within the timeout")


def test_progress_counts_hosts_errors_and_eta():
    planned = [
        (f"k{i}", {"task": "t", "method": "fmt", "model": "m", "data_size": d, "seed": s})
        for i, (d, s) in enumerate([(10, 0), (10, 1), (20, 0), (20, 1)])
    ]
    now = 1000.0
    rows = [
        {"run_key": "k0", "spec": planned[0][1], "status": "done", "record": {"loss": 2.0},
         "error": None, "started_at": now - 100, "finished_at": now - 40},  # 60 s
        {"run_key": "k1", "spec": planned[1][1], "status": "failed", "record": None,
         "error": "Traceback\n  ...\nValueError: bad", "started_at": now - 40, "finished_at": now - 30},
        {"run_key": "k2", "spec": planned[2][1], "status": "running", "record": None,
         "error": None, "started_at": now - 20, "finished_at": None},
    ]  # fmt: skip
    out = progress(planned, rows, {"k2": "gpu7:123"}, now)
    t = out["totals"]
    assert (t["done"], t["failed"], t["running"], t["pending"], t["total"]) == (1, 1, 1, 1, 4)
    assert t["finished"] == 2
    c10, c20 = out["cells"]
    assert (c10["data_size"], c10["done"], c10["failed"]) == (10, 1, 1)
    assert c10["errors"] == ["seed 1: ValueError: bad"]
    assert c20["hosts"] == ["gpu7:123"] and c20["pending"] == 1
    # one finished run took 60 s: the running one has 40 s left, the pending one 60 s, and one
    # run is running at a time
    assert out["eta_seconds"] == pytest.approx(100.0)
    assert out["mean_run_seconds"] == pytest.approx(60.0)
    # nothing running: no ETA rather than a made-up one
    rows[2]["status"] = "pending"
    assert progress(planned, rows, {}, now)["eta_seconds"] is None


def test_live_points_average_seeds_and_skip_unfinished():
    spec = {"task": "t", "method": "lora", "model": "m", "pet_size": 4, "data_size": 10}
    rows = [
        {"spec": {**spec, "seed": 0}, "status": "done", "record": {"loss": 2.0}},
        {"spec": {**spec, "seed": 1}, "status": "done", "record": {"loss": 3.0}},
        {"spec": {**spec, "seed": 2}, "status": "diverged", "record": {"loss": float("nan")}},
        {"spec": {**spec, "seed": 3}, "status": "done", "record": {"loss": float("nan")}},
    ]
    [p] = live_points(rows)
    assert (p["loss"], p["n"], p["pet_size"]) == (2.5, 2, 4)


def test_state_follows_the_store_and_refits(tmp_path):
    study = live_study()
    db = tmp_path / "s.db"
    live = LiveStudy(study, db, interval=0.1, data_hashes=HASHES)
    live.poll()
    assert live.state()["progress"] is None and "no run store yet" in live.state()["store_error"]
    with RunStore(db) as store:
        store.add_runs((r.run_key, r.spec) for r in plan_study(study, HASHES))
        finish_runs(store, 16)
        finish_runs(store, 1, fail=True)
        live.start()
        try:
            st = wait_for(lambda: (s := live.state())["fit"]["status"] == "ok" and s)
            assert st["progress"]["totals"]["done"] == 16
            assert st["fit"]["finished_at_fit"] == 16
            failed = [c for c in st["progress"]["cells"] if c["failed"]]
            assert failed and "out of memory" in failed[0]["errors"][0]
            [ans] = st["fit"]["tasks"]
            assert ans["best"] in ("fmt", "lora") and ans["law"] == "multiplicative"
            assert 0 <= ans["p_best"] <= 1 and ans["predicted_loss"] > 0
            assert st["fit"]["curves"] and st["points"]
            # a run finishing later: the progress moves and the fit follows
            finish_runs(store, 1)
            wait_for(lambda: live.state()["fit"].get("finished_at_fit") == 17)
            assert live.state()["progress"]["totals"]["done"] == 17
        finally:
            live.stop()


def test_server_answers_json_and_page(tmp_path):
    study = live_study()
    db = tmp_path / "s.db"
    with RunStore(db) as store:
        store.add_runs((r.run_key, r.spec) for r in plan_study(study, HASHES))
        finish_runs(store, 3)
    server = LiveServer(LiveStudy(study, db, interval=0.1, data_hashes=HASHES, fit=None)).start()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url + "api/state") as r:
            st = json.load(r)
        assert st["progress"]["totals"]["done"] == 3 and st["fit"]["status"] == "waiting"
        with urllib.request.urlopen(server.url) as r:
            page = r.read().decode()
        assert "/api/state" in page and "<script" in page
        assert "src=" not in page and "http" not in page.replace("/api/state", "")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url + "nothing")
        assert e.value.code == 404
    finally:
        server.close()


def test_serve_command_refuses_bad_input(tmp_path, capsys):
    from ftscale.cli import main

    toml = tmp_path / "s.toml"
    toml.write_text('[study]\nname = "x"\n')
    assert main(["study", "serve", str(toml), "--port", "70000"]) == 2
    assert "--port must be" in capsys.readouterr().err
    assert main(["study", "serve", str(tmp_path / "missing.toml")]) == 2


@pytest.mark.slow
def test_serve_command_serves_the_store(tmp_path):
    """``ftscale study serve`` as a user starts it: it prints its address and answers there."""
    import os
    import subprocess
    import sys

    toml = tmp_path / "s.toml"
    toml.write_text(
        '[study]\nname = "served"\ntasks = ["translate-en-de"]\nfactor = "model_size"\n'
        'models = ["sim-1e5", "sim-1e6"]\n'
        'methods = ["fmt", "lora"]\nseeds = 1\n\n[data_sizes]\nfmt = [100]\nlora = [100]\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ftscale", "study", "serve", str(toml), "--port", "0", "--no-fit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving study served at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split(" ")[0]
        with urllib.request.urlopen(url + "api/state", timeout=10) as r:
            st = json.load(r)
        # no store yet: the page waits for one instead of creating it
        assert st["progress"] is None and "no run store yet" in st["store_error"]
        assert not (tmp_path / "s.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
