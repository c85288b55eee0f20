"""The study commands end to end: a real (tiny) study through the CLI."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ftscale.schema import CORE_COLUMNS

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "tiny.toml"


def ftscale(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "ftscale", *args], capture_output=True, text=True, env=env
    )


def test_malformed_study_file_is_rejected_before_anything_runs(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text().replace("steps = 12", "stepz = 12"))
    proc = ftscale("study", "run", str(bad), "--store", str(tmp_path / "s.db"))
    assert proc.returncode == 2
    assert "training.stepz" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s.db").exists()


def test_status_without_store_is_a_one_line_error(tmp_path):
    proc = ftscale("study", "status", str(TINY), "--store", str(tmp_path / "none.db"))
    assert proc.returncode == 2 and "no run store" in proc.stderr


def test_plan_lists_every_run(tmp_path):
    proc = ftscale("study", "plan", str(TINY), "--store", str(tmp_path / "s.db"), "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["n_runs"] == 2 * (2 + 2) and len({r["run_key"] for r in plan["runs"]}) == 8


@pytest.mark.slow
def test_tiny_study_end_to_end(tmp_path):
    db = str(tmp_path / "tiny.db")
    run = ftscale("study", "run", str(TINY), "--store", db, "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["counts"]["done"] == out["planned"] == 8
    again = json.loads(ftscale("study", "run", str(TINY), "--store", db, "--json").stdout)
    assert again["ran"] == 0 and again["skipped"] == 8

    status = json.loads(ftscale("study", "status", str(TINY), "--store", db, "--json").stdout)
    assert status["totals"]["done"] == 8

    for fmt in ("csv", "jsonl", "parquet"):
        path = tmp_path / f"results.{fmt}"
        proc = ftscale(
            "study", "export", str(TINY), "--store", db, "--format", fmt, "--out", str(path)
        )
        assert proc.returncode == 0, proc.stderr
        df = {"csv": pd.read_csv, "parquet": pd.read_parquet}.get(
            fmt, lambda p: pd.read_json(p, lines=True)
        )(path)
        assert len(df) == 8 and set(CORE_COLUMNS) | {"run_key", "status"} <= set(df.columns)
        assert (df["status"] == "done").all() and df["loss"].notna().all()

    # issue 17, defect 12: the format follows --out's name, a clash is refused, JSONL on stdout
    # ends without an empty line
    clash = ftscale(
        "study",
        "export",
        str(TINY),
        "--store",
        db,
        "--format",
        "csv",
        "--out",
        str(tmp_path / "x.parquet"),
    )
    assert clash.returncode == 2 and "would not be what its name says" in clash.stderr
    assert not (tmp_path / "x.parquet").exists()
    inferred = ftscale(
        "study", "export", str(TINY), "--store", db, "--out", str(tmp_path / "y.parquet")
    )
    assert inferred.returncode == 0 and len(pd.read_parquet(tmp_path / "y.parquet")) == 8
    jl = ftscale("study", "export", str(TINY), "--store", db, "--format", "jsonl")
    assert jl.returncode == 0 and jl.stdout.endswith("}\n") and "\n\n" not in jl.stdout
    assert len(jl.stdout.splitlines()) == 8
    fit = ftscale(
        "study", "fit", str(TINY), "--store", db, "--json", "--out", str(tmp_path / "fits.json")
    )
    assert fit.returncode == 0, fit.stderr
    doc = json.loads(fit.stdout)
    assert doc["factor"] == "model_size" and len(doc["points"]) == 8
    report = ftscale("report", str(TINY), "--store", db, "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report" / "report.html").exists()
    # A second report replaces the first (the folder carries ftscale's marker) ...
    again = ftscale("report", str(TINY), "--store", db, "--out", str(tmp_path / "report"))
    assert again.returncode == 0, again.stderr
    # ... but a folder or file of the user's is never deleted or moved (issue 17, defect 1).
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "important.txt").write_text("keep")
    (tmp_path / "afile").write_text("keep")
    for out in (mine, tmp_path / "afile"):
        bad = ftscale("report", str(TINY), "--store", db, "--out", str(out))
        assert bad.returncode == 2 and bad.stderr.startswith("ftscale: error:"), bad.stderr
        assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert (mine / "important.txt").read_text() == "keep" and sorted(mine.iterdir()) == [
        mine / "important.txt"
    ]
    assert (tmp_path / "afile").read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


SIM_TOML = """
[study]
name = "simcli"
tasks = ["translate-en-de"]
factor = "model_size"
models = ["sim-1e5", "sim-1e6", "sim-1e7"]
methods = ["fmt", "lora"]
seeds = 2

[data_sizes]
fmt = [300, 1000, 3000, 10000]
lora = [100, 300, 1000, 3000]

[training]
steps = 10

[fit]
laws = ["multiplicative"]
bootstrap = 10
"""


def test_study_fit_json_and_text_carry_health_and_answer(tmp_path, monkeypatch, capsys):
    """Runs without training (the simulated run function): ``study fit --json`` has the
    health lists and the answer, the text output prints them."""
    from ftscale.cli import main

    monkeypatch.setenv("FTSCALE_RUN_FN", "ftscale.testing.simulated:simulated_run")
    toml = tmp_path / "sim.toml"
    toml.write_text(SIM_TOML)
    db = str(tmp_path / "s.db")
    assert main(["study", "run", str(toml), "--store", db, "--workers", "1", "--json"]) == 0
    capsys.readouterr()
    assert main(["study", "fit", str(toml), "--store", db, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["health"]) == {"curves", "laws", "critical", "flips"}
    (ans,) = doc["answer"]["tasks"]
    assert (ans["model"], ans["data_size"]) == ("sim-1e7", 10000)
    # LoRA ran up to 3,000 examples: its loss at 10,000 is an extrapolation, and says so
    lora = next(r for r in ans["ranking"] if r["method"] == "lora")
    assert lora["extrapolated"] is True and lora["measured_range"] == [100, 3000]
    assert any(f["kind"] == "data_size" and f["method"] == "lora" for f in ans["flags"])
    for f in doc["fits"]:
        assert {"data_range", "factor_range", "health"} <= set(f)
    for p in doc["critical"][0]["points"]:
        assert {"measured_range", "extrapolated"} <= set(p)
    assert main(["study", "fit", str(toml), "--store", db]) == 0
    text = capsys.readouterr().out
    assert any(
        ln.startswith("answer: translate-en-de: at model size 10M") for ln in text.split("\n")
    )
    assert "outside the LoRA runs at model size 10M (100-3,000 examples)" in text
