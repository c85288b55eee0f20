"""`ftscale study status`: runs per host (or Ray node) and the failures with their reasons; the
Ray resource flags checked before anything runs."""

from __future__ import annotations

import json
import socket

import pytest

from ftscale.cli import main

STUDY = """
[study]
name = "hosts"
tasks = ["translate-en-de"]
factor = "model_size"
models = ["sim-1e5", "sim-crash", "sim-diverge"]
methods = ["lora"]
seeds = 1

[data_sizes]
lora = [100, 300]

[training]
steps = 10
"""


def test_status_shows_hosts_and_failure_reasons(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FTSCALE_RUN_FN", "ftscale.testing.simulated:simulated_run")
    study = tmp_path / "hosts.toml"
    study.write_text(STUDY)
    store = f"sqlite:///{tmp_path / 'hosts.db'}"
    assert main(["study", "run", str(study), "--store", store, "--workers", "1", "--json"]) == 1
    capsys.readouterr()
    assert main(["study", "status", str(study), "--store", store, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    host = socket.gethostname()
    assert doc["hosts"] == [{"host": host, "running": 0, "done": 2, "failed": 2, "diverged": 2}]
    reasons = {(f["model"], f["status"]): f["reason"] for f in doc["failures"]}
    assert reasons == {
        ("sim-crash", "failed"): "RuntimeError: simulated crash in sim-crash",
        ("sim-diverge", "diverged"): "the loss diverged (NaN or inf)",
    }
    assert all(f["host"] == host and f["attempts"] == 1 for f in doc["failures"])
    assert main(["study", "status", str(study), "--store", store]) == 0
    text = capsys.readouterr().out.splitlines()
    assert any(ln.startswith(host) and ln.split()[1:] == ["2", "2", "2", "0"] for ln in text)
    assert sum("simulated crash in sim-crash" in ln for ln in text) == 2


@pytest.mark.parametrize(
    "flags, msg",
    [
        (["--gpus-per-run", "0.25"], "need --backend ray"),
        (["--backend", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be positive"),
        (["--backend", "ray", "--gpus-per-run", "-1"], "--gpus-per-run must be positive"),
        (["--backend", "ray", "--resources", "[1]"], "--resources must be a JSON object"),
        (["--backend", "ray", "--resources", '{"a": 0}'], "--resources must be a JSON object"),
    ],
)
def test_bad_resource_flags_are_user_errors(tmp_path, capsys, flags, msg):
    study = tmp_path / "hosts.toml"
    study.write_text(STUDY)
    db = tmp_path / "s.db"
    assert main(["study", "run", str(study), "--store", str(db), *flags]) == 2
    assert msg in capsys.readouterr().err
    assert not db.exists()
