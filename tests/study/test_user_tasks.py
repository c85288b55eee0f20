"""Studies over the user's own data: task tables, bare paths, run keys that follow content."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from ftscale.errors import UserError
from ftscale.study.plan import plan_study
from ftscale.study.spec import load_study

STUDY = """
[study]
name = "own"
tasks = {tasks}
factor = "model_size"
models = ["ftlm-1", "ftlm-2"]
methods = ["fmt", "lora"]
seeds = 1
{tables}
[data_sizes]
fmt = [8, 16]
lora = [8, 16]

[training]
steps = 4
batch_size = 4
max_length = 48
eval_every = 2
dev_examples = 4
test_examples = 8
decode_examples = 2
max_new_tokens = 4
forget_examples = 0

[fit]
laws = ["multiplicative"]
holdout_largest = ["data_size"]
bootstrap = 5
"""

QA_TABLE = """
[tasks.qa]
path = "data/qa.json"
format = "alpaca"
dev_size = 4
test_size = 8
metric = "exact_match"
"""


def _setup(root, tasks='["sums.jsonl", "qa"]', tables=QA_TABLE):
    (root / "data").mkdir(parents=True)
    rows = [{"instruction": f"{i} plus {i + 1}?", "output": str(2 * i + 1)} for i in range(60)]
    (root / "data" / "qa.json").write_text(json.dumps(rows), encoding="utf-8")
    (root / "sums.jsonl").write_text(
        "".join(
            json.dumps({"prompt": f"{i}+{i}=", "completion": str(2 * i)}) + "\n" for i in range(60)
        ),
        encoding="utf-8",
    )
    path = root / "study.toml"
    path.write_text(STUDY.format(tasks=tasks, tables=tables), encoding="utf-8")
    return path


def test_tables_and_bare_paths_name_user_tasks(tmp_path):
    study = load_study(_setup(tmp_path))
    assert study.tasks == ("sums", "qa")
    assert study.task_sources["qa"]["path"] == str((tmp_path / "data" / "qa.json").resolve())
    assert study.task_sources["qa"]["metric"] == ["exact_match"]
    assert study.task_sources["sums"]["path"].endswith("sums.jsonl")
    runs = plan_study(study)
    assert {r.spec["task"] for r in runs} == {"sums", "qa"}
    assert all(r.spec["task_source"]["path"] for r in runs)


def test_run_keys_follow_the_content_not_the_place(tmp_path):
    keys = {r.run_key for r in plan_study(load_study(_setup(tmp_path / "a")))}
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert {r.run_key for r in plan_study(load_study(tmp_path / "b" / "study.toml"))} == keys
    with (tmp_path / "b" / "sums.jsonl").open("a") as fh:
        fh.write(json.dumps({"prompt": "1+1=", "completion": "2"}) + "\n")
    changed = {r.run_key for r in plan_study(load_study(tmp_path / "b" / "study.toml"))}
    assert len(changed & keys) == len(keys) // 2  # the qa runs stay, the sums runs re-run


@pytest.mark.parametrize(
    "tasks,tables,msg",
    [
        ('["qa"]', '[tasks.qa]\nformat = "alpaca"\n', "tasks.qa: a user task needs `path`"),
        ('["qa"]', '[tasks.qa]\npath = "x.json"\ncolour = 1\n', "unknown task key 'colour'"),
        ('["sums.jsonl"]', QA_TABLE, "tasks.qa: defined but not in study.tasks"),
        ('["sums.jsonl", "./sums.jsonl"]', "", "two tasks are named 'sums'"),
        ('["qa"]', '[tasks.qa]\npath = "data/qa.json"\nformat = "csv"\n', "unknown data format"),
    ],
)
def test_bad_task_tables(tmp_path, tasks, tables, msg):
    with pytest.raises(UserError, match=msg):
        load_study(_setup(tmp_path, tasks, tables))


def test_a_bad_record_stops_the_study_before_any_run(tmp_path):
    from ftscale.study.check import check_study_resources

    path = _setup(tmp_path)
    with (tmp_path / "sums.jsonl").open("a") as fh:
        fh.write('{"prompt": "x", "completion": ""}\n')
    with pytest.raises(UserError, match=r"sums\.jsonl:61: field 'completion' is empty"):
        check_study_resources(load_study(path))


def _ftscale(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "ftscale", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.mark.slow
def test_a_study_on_user_files_runs_fits_and_reports(tmp_path):
    _setup(tmp_path)
    for args in (
        ["study", "run", "study.toml", "--workers", "1"],
        ["study", "fit", "study.toml", "--json"],
        ["report", "study.toml", "--out", "report"],
    ):
        proc = _ftscale(*args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(_ftscale("study", "fit", "study.toml", "--json", cwd=tmp_path).stdout)
    assert doc
    export = _ftscale(
        "study", "export", "study.toml", "--format", "csv", "--out", "r.csv", cwd=tmp_path
    )
    assert export.returncode == 0
    header, *rows = (tmp_path / "r.csv").read_text().splitlines()
    assert len(rows) == 16 and "exact_match" in header
    assert {r.split(",")[0] for r in rows} == {"sums", "qa"}
    assert (tmp_path / "report" / "report.html").exists()


def test_a_response_longer_than_max_length_stops_the_study(tmp_path):
    from ftscale.study.check import check_study_resources

    path = _setup(tmp_path)
    with (tmp_path / "sums.jsonl").open("a") as fh:
        fh.write(json.dumps({"prompt": "x", "completion": " ".join(["long"] * 80)}) + "\n")
    with pytest.raises(UserError, match=r"sums\.jsonl:61: the response is \d+ tokens with ftlm-1"):
        check_study_resources(load_study(path))


def test_bad_data_writes_nothing_to_the_store(tmp_path):
    _setup(tmp_path)
    with (tmp_path / "sums.jsonl").open("a") as fh:
        fh.write("not json\n")
    proc = _ftscale("study", "run", "study.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("sums.jsonl:61: malformed JSON (Expecting value)")
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "runs").exists()


def test_the_shipped_example_data_is_what_its_script_makes(tmp_path, monkeypatch):
    """examples/own_data/ comes from scripts/make_example_data.py, and the study that names it
    plans and passes its checks against the real files."""
    import importlib.util
    from pathlib import Path

    from ftscale.study.check import check_study_resources

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("mk", root / "scripts" / "make_example_data.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    monkeypatch.setattr(mk, "OUT", tmp_path)
    mk.main()
    for name in ("alpaca.json", "chat.jsonl", "prompt_completion.jsonl"):
        assert (tmp_path / name).read_bytes() == (
            root / "examples" / "own_data" / name
        ).read_bytes()
    study = load_study(root / "examples" / "own_data.toml")
    check_study_resources(study)
    assert len(plan_study(study)) == 48
