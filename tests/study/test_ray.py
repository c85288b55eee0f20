"""The Ray back end runs the same study to the same results as the local one."""

import contextlib

import pytest

from ftscale.study.results import results_frame
from ftscale.study.runner import run_study
from ftscale.study.store import RunStore

HASHES = {"sim-task": "fixture"}

ray = pytest.importorskip("ray", reason="Ray is an optional extra")


@pytest.mark.slow
def test_ray_backend_matches_local(tmp_path, sim_env, sim_study):
    local = run_study(
        sim_study, tmp_path / "local.db", workers=2, progress=False, data_hashes=HASHES
    )
    remote = run_study(
        sim_study,
        tmp_path / "ray.db",
        backend="ray",
        workers=2,
        progress=False,
        data_hashes=HASHES,
    )
    assert local.counts == remote.counts
    with RunStore(tmp_path / "local.db") as a, RunStore(tmp_path / "ray.db") as b:
        fa = results_frame(a).sort_values("run_key").reset_index(drop=True)
        fb = results_frame(b).sort_values("run_key").reset_index(drop=True)
    assert fa["run_key"].tolist() == fb["run_key"].tolist()
    assert fa["loss"].tolist() == fb["loss"].tolist()


@pytest.mark.slow
def test_ray_backend_joins_a_running_cluster(tmp_path, sim_env, sim_study, monkeypatch):
    """`--address auto` joins a cluster started with `ray start --head` (here on this machine;
    a multi-node cluster is joined the same way) and gives the local back end's results; the
    cluster is not the driver's and still runs after the study.

    Deterministic on a machine where other Ray instances may run: RAY_ADDRESS pins what "auto"
    resolves to (otherwise the newest cluster of /tmp/ray, perhaps another's), the head runs
    with --block in its own process group and is stopped by signalling that group (not
    `ray stop --force`, which stops every Ray of the machine), and "still runs" is asked of
    its GCS port (not `ray status`, which also picks a cluster by itself)."""
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import time
    from pathlib import Path

    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [ray_cli, "start", "--head", "--block", "--node-ip-address", "127.0.0.1"]
    start += ["--port", str(port), "--num-cpus", "2", "--include-dashboard=false"]
    temp = tempfile.mkdtemp(prefix="ftr-")  # short: Ray's socket paths must fit 107 bytes
    start += ["--disable-usage-stats", "--temp-dir", temp]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        start, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return True
        except OSError:
            return False

    try:
        deadline = time.time() + 120
        while not listening():
            assert head.poll() is None, head.stderr.read().decode()
            assert time.time() < deadline, "ray start --head did not come up in 120 s"
            time.sleep(0.2)
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
        joined = run_study(
            sim_study,
            tmp_path / "cluster.db",
            backend="ray",
            address="auto",
            progress=False,
            data_hashes=HASHES,
        )
        assert not ray.is_initialized()  # the driver disconnected; the cluster is not ours
        assert head.poll() is None and listening()  # ... and still runs
    finally:
        with contextlib.suppress(ProcessLookupError):  # --block: it stops what it started
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(30)
        shutil.rmtree(temp, ignore_errors=True)
    local = run_study(
        sim_study, tmp_path / "local.db", workers=2, progress=False, data_hashes=HASHES
    )
    assert joined.counts == local.counts and joined.counts["done"] > 0
    with RunStore(tmp_path / "local.db") as a, RunStore(tmp_path / "cluster.db") as b:
        fa = results_frame(a).sort_values("run_key").reset_index(drop=True)
        fb = results_frame(b).sort_values("run_key").reset_index(drop=True)
    assert fa["run_key"].tolist() == fb["run_key"].tolist()
    assert fa["loss"].tolist() == fb["loss"].tolist()


def test_unreachable_ray_address_is_a_user_error(tmp_path, sim_env, sim_study):
    from ftscale.errors import UserError

    # a Ray Client address without ray[client] (or, with it, nothing listening on port 1)
    with pytest.raises(UserError, match="cannot reach the Ray cluster at ray://127.0.0.1:1"):
        run_study(
            sim_study,
            tmp_path / "x.db",
            backend="ray",
            address="ray://127.0.0.1:1",
            progress=False,
            data_hashes=HASHES,
        )
    # ... and leaves Ray usable in this process (a failed ray:// connection left Ray's client
    # mode on, and the next study's ray.init failed)
    from ray._private import client_mode_hook

    assert not client_mode_hook.is_client_mode_enabled and not ray.is_initialized()


def test_unreachable_cluster_is_one_line_within_seconds(tmp_path):
    # issue 17, defect 12: the error used to come after a minute and ~20 lines of Ray's log
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from pathlib import Path

    tiny = Path(__file__).resolve().parents[2] / "examples" / "tiny.toml"
    t = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftscale",
            "study",
            "run",
            str(tiny),
            "--store",
            str(tmp_path / "s.db"),
            "--backend",
            "ray",
            "--address",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and time.monotonic() - t < 60
    assert proc.stderr.strip().splitlines() == [
        f"ftscale: error: cannot reach the Ray cluster at 127.0.0.1:{port}: Connection refused"
    ]
