import pytest

from ftscale.study.spec import parse_study
from ftscale.testing.simulated import simulated_study


@pytest.fixture
def sim_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FTSCALE_RUN_FN", "ftscale.testing.simulated:simulated_run")
    log = tmp_path / "exec.log"
    monkeypatch.setenv("FTSCALE_SIM_LOG", str(log))
    return log


@pytest.fixture
def sim_study():
    return parse_study(simulated_study())
