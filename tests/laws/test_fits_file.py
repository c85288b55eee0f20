"""Fits files and run stores by version and shape (issue 17, defect 7): every corruption is a
one-line error, exit 2, before any work."""

import json
import sqlite3

import pytest

from ftscale.cli import main


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def fits(capsys, sim_table, tmp_path):
    path, _ = sim_table
    out = tmp_path / "fits.json"
    args = ["--law", "multiplicative", "--factor", "model_size", "--group-by", "method"]
    rc, _, err = call(capsys, "fit", path, *args, "--bootstrap", "4", "--out", out)
    assert rc == 0, err
    return out


def _mutate(doc, how):
    rec = doc["fits"][0]
    if how == "ragged":
        rec["bootstrap_params"] = [[1.0, 2.0], [1.0]]
    elif how == "text":
        rec["bootstrap_params"] = [["a", "b", "c", "d"]]
    elif how == "narrow":
        rec["bootstrap_params"] = [[1.0, 2.0]]
    elif how == "nan":
        rec["params"]["alpha"] = float("nan")
    elif how == "string":
        rec["params"]["E"] = "0.7"
    elif how == "missing":
        del rec["params"]["beta"]
    elif how == "version":
        doc["ftscale_fits"] = 99
    elif how == "version_text":
        doc["ftscale_fits"] = "one"
    elif how == "space":
        rec["space"] = "cubic"
    elif how == "delta":
        rec["huber_delta"] = -1
    return doc


@pytest.mark.parametrize(
    "how",
    [
        "ragged",
        "text",
        "narrow",
        "nan",
        "string",
        "missing",
        "version",
        "version_text",
        "space",
        "delta",
    ],
)
@pytest.mark.parametrize("cmd", ["critical", "recommend"])
def test_corrupt_fits_files_are_one_line_errors(capsys, fits, tmp_path, how, cmd):
    doc = _mutate(json.loads(fits.read_text()), how)
    bad = tmp_path / f"bad-{how}.json"
    bad.write_text(json.dumps(doc))
    args = ["--at", "1e9"] + (["--data-size", "1e4"] if cmd == "recommend" else [])
    rc, out, err = call(capsys, cmd, bad, *args)
    assert rc == 2 and out == "", err
    assert err.startswith("ftscale: error:") and len(err.strip().splitlines()) == 1


def test_the_untouched_fits_file_still_reads(capsys, fits):
    rc, _, err = call(capsys, "recommend", fits, "--at", "1e9", "--data-size", "1e4")
    assert rc == 0, err


def test_store_of_a_newer_version_and_corrupt_records(tmp_path):
    from ftscale.errors import UserError
    from ftscale.study.store import RunStore

    path = tmp_path / "s.db"
    with RunStore(path) as store:
        store.add_runs([("k1", {"method": "fmt"})])
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET spec='{not json' WHERE run_key='k1'")
    db.commit()
    with RunStore(path) as store, pytest.raises(UserError, match="corrupt spec"):
        list(store.runs(["k1"]))
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(UserError, match="schema version 99"):
        RunStore(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create the store's folder"):
        RunStore(blocker / "sub" / "s.db")
