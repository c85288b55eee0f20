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
