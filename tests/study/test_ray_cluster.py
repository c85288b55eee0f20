"""The Ray back end on a cluster of several nodes on this machine (ray.cluster_utils.Cluster, as
Ray's own tests do): runs placed by resources, fractional GPUs, a node lost mid-study, user files
shipped to workers. One cluster for the module: a head (no CPUs: the driver's node) and three
worker nodes; the node-loss and missing-file tests add a node of their own."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter

import pytest

from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.storage import open_store
from ftscale.testing.simulated import simulated_study

ray = pytest.importorskip("ray", reason="Ray is an optional extra")
from ray.cluster_utils import Cluster  # noqa: E402

HASHES = {"sim-task": "fixture"}
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            # a killed node is declared dead within ~2 s (defaults: tens of seconds)
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 3},
        },
    )
    nodes = {
        "gpu": c.add_node(num_cpus=2, num_gpus=1, resources={"gpu_node": 1}),
        "cpu1": c.add_node(num_cpus=1),
        "cpu2": c.add_node(num_cpus=1),
    }
    c.wait_for_nodes()
    c.nodes = nodes
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


@pytest.fixture
def probe_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FTSCALE_RUN_FN", "ftscale.testing.cluster_runs:probe_run")
    log = tmp_path / "probe.log"
    monkeypatch.setenv("FTSCALE_PROBE_LOG", str(log))
    return log


def _probes(log) -> list[dict]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _study(models=("sim-1e5", "sim-1e6"), seeds=1):
    return parse_study(simulated_study(models=models, seeds=seeds))


def test_fractional_gpus_pack_runs_onto_the_gpu_node(tmp_path, cluster, probe_env):
    """gpus_per_run=0.25, cpus_per_run=0.5: four runs fit the one GPU at once (the capacity
    the executor computes), and every run lands on the only node with a GPU, holding a quarter
    of it and half a CPU."""
    from ftscale.study.executors.ray import RayExecutor

    ex = RayExecutor(address=cluster.address, cpus_per_run=0.5, gpus_per_run=0.25)
    ex.start()
    try:
        assert ex.capacity == 4  # min(4 CPUs / 0.5, 1 GPU / 0.25)
    finally:
        ex.shutdown()
    study = _study()
    db = tmp_path / "s.db"
    s = run_study(
        study,
        db,
        backend="ray",
        address=cluster.address,
        progress=False,
        data_hashes=HASHES,
        executor_kwargs={"cpus_per_run": 0.5, "gpus_per_run": 0.25},
    )
    assert s.counts["done"] == s.planned == 12
    gpu_node = cluster.nodes["gpu"].node_id
    with open_store(db) as store:
        for run in store.runs():
            assert run.record["node_id"] == gpu_node
            assert run.record["assigned"] == {"CPU": 0.5, "GPU": 0.25}
            assert run.host.endswith(f"node {gpu_node[:8]}")


def test_custom_resources_place_runs(tmp_path, cluster, probe_env):
    s = run_study(
        _study(),
        tmp_path / "s.db",
        backend="ray",
        address=cluster.address,
        progress=False,
        data_hashes=HASHES,
        executor_kwargs={"cpus_per_run": 0.5, "resources": {"gpu_node": 0.5}},
    )
    assert s.counts["done"] == s.planned
    assert {p["node_id"] for p in _probes(probe_env)} == {cluster.nodes["gpu"].node_id}


def test_a_node_lost_mid_study_loses_and_duplicates_no_run(
    tmp_path, cluster, probe_env, monkeypatch
):
    """A node holding runs is killed mid-study: its runs come back to the queue and finish on
    the other nodes; every run is recorded once."""
    monkeypatch.setenv("FTSCALE_SIM_SLEEP", "1.0")
    doomed = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    study = _study(models=("sim-1e5", "sim-1e6"), seeds=1)
    killed: list[float] = []

    def kill_when_busy():
        deadline = time.time() + 120
        while time.time() < deadline:
            if sum(p["node_id"] == doomed.node_id for p in _probes(probe_env)) >= 2:
                cluster.remove_node(doomed, allow_graceful=False)
                killed.append(time.time())
                return
            time.sleep(0.05)

    t = threading.Thread(target=kill_when_busy)
    t.start()
    db = tmp_path / "s.db"
    s = run_study(
        study,
        db,
        backend="ray",
        address=cluster.address,
        progress=False,
        data_hashes=HASHES,
    )
    t.join()
    assert killed, "the doomed node never ran a run"
    assert s.counts["done"] == s.planned == 12  # 0 lost
    probes = _probes(probe_env)

    def ident(p):
        return (p["method"], p["model"], p["data_size"], p["seed"])

    on_doomed = {ident(p) for p in probes if p["node_id"] == doomed.node_id}
    executed = Counter(ident(p) for p in probes)
    with open_store(db) as store:
        runs = list(store.runs())
    assert len(runs) == s.planned and all(r.status == "done" for r in runs)
    assert len(executed) == s.planned
    # only the runs the lost node held ran again, once, elsewhere; each is recorded once
    assert all(n == 1 or (k in on_doomed and n == 2) for k, n in executed.items())
    again = [r for r in runs if r.attempts == 2]
    assert again and all(r.record["node_id"] != doomed.node_id for r in again)
    assert {ident(r.spec) for r in again} <= on_doomed
    assert all(r.attempts == 1 for r in runs if r not in again)


def test_a_user_file_reaches_workers_that_do_not_see_it(tmp_path, cluster, probe_env):
    """A study whose task is a user's data file: with ship_files="always" (as on workers that do
    not share the driver's filesystem) every run reads the shipped copy, the same bytes, and the
    record names the user's path."""
    data = tmp_path / "mytask.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) + "\n" for i in range(50))
    )
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    doc = simulated_study()
    doc["study"]["tasks"] = ["mytask"]  # a [tasks.NAME] table naming the file, as a user writes
    doc["tasks"] = {"mytask": {"path": str(data), "format": "prompt_completion"}}
    study = parse_study(doc)
    assert study.task_sources["mytask"]["path"] == str(data)
    db = tmp_path / "s.db"
    s = run_study(
        study,
        db,
        backend="ray",
        address=cluster.address,
        progress=False,
        executor_kwargs={"ship_files": "always", "cpus_per_run": 0.5},
    )
    assert s.counts["done"] == s.planned
    probes = _probes(probe_env)
    assert len(probes) == s.planned
    assert all(
        p["task_file"] != str(data) and "ftscale-ray-files" in p["task_file"] for p in probes
    )
    assert {p["task_file_sha256"] for p in probes} == {sha}
    with open_store(db) as store:
        assert {r.record["task_file"] for r in store.runs()} == {str(data)}


def test_a_worker_that_cannot_see_a_path_fails_the_run_clearly(
    tmp_path, cluster, probe_env, monkeypatch
):
    """ship_files="never" and a path the worker's node does not have (deleted here before the
    run's node joins): the run fails with the path and the node in its error."""
    from ftscale.study.executors.ray import RayExecutor

    data = tmp_path / "gone.jsonl"
    data.write_text("x\n")
    spec = {"method": "lora", "model": "sim-1e5", "task": "sim-task", "data_size": 50, "seed": 0}
    spec["task_source"] = {"path": str(data)}
    ex = RayExecutor(
        address=cluster.address, cpus_per_run=0.5, resources={"late": 1}, ship_files="never",
        workers=1,
    )  # fmt: skip
    ex.start()
    try:
        ex.submit("k", spec)  # waits for a node with the "late" resource
        data.unlink()
        late = cluster.add_node(num_cpus=1, resources={"late": 1})
        [(key, outcome)] = ex.wait(timeout=120)
    finally:
        ex.shutdown()
        cluster.remove_node(late)
    assert key == "k" and outcome.status == "failed"
    assert f"cannot see {data}" in outcome.error and late.node_id[:8] in outcome.error
