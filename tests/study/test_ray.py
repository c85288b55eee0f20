"""The Ray back end runs the same study to the same results as the local one."""

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
def test_ray_backend_joins_a_running_cluster(tmp_path, sim_env, sim_study):
    """`--address auto` joins a cluster started with `ray start --head` (here on this machine;
    a multi-node cluster is joined the same way) and gives the local back end's results; an
    unreachable address is a one-line error, exit code 2."""
    import os
    import shutil
    import socket
    import subprocess
    import sys
    from pathlib import Path

    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli is not None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = [ray_cli, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    opts = ["--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(start + opts, check=True, capture_output=True, env=env, timeout=120)
    try:
        joined = run_study(
            sim_study,
            tmp_path / "cluster.db",
            backend="ray",
            address="auto",
            progress=False,
            data_hashes=HASHES,
        )
        assert not ray.is_initialized()  # the driver disconnected; the cluster is not ours
        alive = subprocess.run([ray_cli, "status"], capture_output=True, text=True, env=env)
        assert alive.returncode == 0  # ... and still runs
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, env=env, timeout=120)
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
