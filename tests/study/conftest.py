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


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (Debian's binaries, started here; see
    ftscale.testing.postgres). Skipped only outside CI when PostgreSQL is not installed: in CI
    (CI=true) a missing server is a failure."""
    import os

    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from ftscale.testing.postgres import TempPostgres, find_pg_bin

    if find_pg_bin() is None:
        msg = "PostgreSQL is not installed (apt-get install postgresql, or `make install`)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    server = TempPostgres().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server, request):
    """A fresh, empty database on the session's server: its URL."""
    import re
    import uuid

    name = re.sub(r"\W", "_", request.node.name.lower())[:40] + "_" + uuid.uuid4().hex[:8]
    return postgres_server.create_database(name)
