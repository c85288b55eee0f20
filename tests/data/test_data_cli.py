"""``ftscale data``: list/show/export schemas and every bad input (one line, exit code 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ftscale.cli import main
from ftscale.data import get_task, list_tasks


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_json_schema(capsys):
    rc, out, _ = _run(["data", "list", "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert [t["name"] for t in doc["tasks"]] == list_tasks()
    for t in doc["tasks"]:
        assert set(t) == {"name", "kind", "languages", "splits"}
        assert t["kind"] in ("translate", "summarize")
        assert set(t["splits"]) == {"train", "dev", "test"}
        assert all(isinstance(v, int) for v in t["splits"].values())
    by_name = {t["name"]: t for t in doc["tasks"]}
    assert by_name["translate-en-de"]["splits"]["train"] >= 20000


def test_list_text(capsys):
    rc, out, _ = _run(["data", "list"], capsys)
    assert rc == 0 and "translate-en-zh" in out


def test_show(capsys):
    rc, out, _ = _run(["data", "show", "translate-en-de", "--split", "dev", "-n", "2"], capsys)
    assert rc == 0 and out.count("--- translate-en-de dev #") == 2
    assert "Translate English to German:" in out
    rc, out, _ = _run(
        ["data", "show", "summarize-multi", "--split", "test", "-n", "3", "--lang", "fr", "--json"],
        capsys,
    )
    doc = json.loads(out)
    assert len(doc["examples"]) == 3 and {e["lang"] for e in doc["examples"]} == {"fr"}
    assert doc["examples"][0]["prompt"].startswith("Summarize the following document in French:")


def test_export_jsonl_matches_the_split(capsys):
    rc, out, _ = _run(
        ["data", "export", "translate-en-zh", "--split", "test", "--format", "jsonl"], capsys
    )
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    test = get_task("translate-en-zh").split("test")
    assert len(rows) == len(test)
    assert rows[0] == {"source": test[0].source, "target": test[0].target, "lang": test[0].lang}
    assert all(set(r) == {"source", "target", "lang"} for r in rows)


def test_show_and_export_user_data(tmp_path, capsys):
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"a": f"x {i}", "b": f"y {i}"}) + "\n" for i in range(30)))
    rc, out, _ = _run(
        [
            "data",
            "export",
            str(path),
            "--split",
            "train",
            "--source-field",
            "a",
            "--target-field",
            "b",
            "--data-lang",
            "de",
        ],
        capsys,
    )
    assert (
        rc == 0 and len(out.splitlines()) == 24 and json.loads(out.splitlines()[0])["lang"] == "de"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "show", "no-such-task"], "unknown task 'no-such-task'"),
        (["data", "show", "summarize-multi", "--lang", "xx"], "unknown language 'xx'"),
        (["data", "show", "translate-en-de", "-n", "-1"], "-n must be >= 0"),
        (["data", "show", "translate-fr-de", "--split", "train"], "is empty"),
        (
            ["data", "export", "translate-en-de", "--split", "dev", "--format", "csv"],
            "unknown export format",
        ),
        (
            [
                "data",
                "export",
                "missing.jsonl",
                "--split",
                "train",
                "--source-field",
                "a",
                "--target-field",
                "b",
            ],
            "missing.jsonl: no such file",
        ),
        (["data", "show", "x.jsonl", "--source-field", "a"], "needs both"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    rc, out, err = _run(argv, capsys)
    assert rc == 2
    assert out == ""
    assert err.startswith("ftscale: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_in_a_real_process_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x", "b": "y"}\nnot json\n', encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ftscale",
            "data",
            "export",
            str(bad),
            "--split",
            "train",
            "--source-field",
            "a",
            "--target-field",
            "b",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"ftscale: error: {bad}:2: malformed JSON (Expecting value)"


def test_export_requires_split(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["data", "export", "translate-en-de"])
    assert exc.value.code == 2
