"""A store is chosen by its location: a bare path is SQLite as before, a URL is never a path."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from ftscale.errors import UserError
from ftscale.study.storage import describe_store, open_store, parse_store
from ftscale.study.storage.sqlite import SQLiteStore


def test_parse_store_locations(tmp_path):
    assert parse_store("runs/s.db") == ("sqlite", "runs/s.db")
    assert parse_store(tmp_path / "s.db") == ("sqlite", str(tmp_path / "s.db"))
    assert parse_store("sqlite:///rel/s.db") == ("sqlite", "rel/s.db")
    assert parse_store("sqlite:////abs/s.db") == ("sqlite", "/abs/s.db")
    assert parse_store("memory://x") == ("memory", "x")
    url = "postgresql://u:pw@db.example:5432/study"
    assert parse_store(url) == ("postgresql", url)
    assert parse_store("postgres://u@h/d") == ("postgresql", "postgresql://u@h/d")
    assert parse_store("postgresql+psycopg://u@h/d") == ("postgresql", "postgresql://u@h/d")
    assert describe_store(url) == "postgresql://u:***@db.example:5432/study"
    for bad, msg in [
        ("mysql://u@h/d", "unknown store scheme 'mysql://'"),
        ("sqlite://s.db", "three slashes"),
        ("memory://", "memory://NAME"),
        ("", "empty"),
    ]:
        with pytest.raises(UserError, match=msg):
            parse_store(bad)


def test_sqlite_url_and_bare_path_open_the_same_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///a/s.db") as store:
        store.add_runs([("k", {})])
    assert (tmp_path / "a" / "s.db").is_file()
    with open_store("a/s.db") as store:
        assert [r.run_key for r in store.runs()] == ["k"]


def _v1_store(path):
    """A store as ftscale wrote it before the storage protocol (schema version 1)."""
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE runs (run_key TEXT PRIMARY KEY, ord INTEGER NOT NULL, spec TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', record TEXT, error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0, runner TEXT, created_at REAL NOT NULL,
            started_at REAL, finished_at REAL);
        CREATE INDEX runs_status ON runs(status, ord);
        CREATE TABLE runners (runner_id TEXT PRIMARY KEY, host TEXT NOT NULL,
            pid INTEGER NOT NULL, started_at REAL NOT NULL, heartbeat REAL NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        """
    )
    db.execute(
        "INSERT INTO runs VALUES ('a', 0, ?, 'done', ?, NULL, 1, NULL, 1.0, 2.0, 3.0)",
        (json.dumps({"i": 0}), json.dumps({"loss": 2.5})),
    )
    db.execute("INSERT INTO runs(run_key, ord, spec, created_at) VALUES ('b', 1, '{}', 1.0)")
    db.commit()
    db.close()


def test_an_old_store_is_migrated_and_readable(tmp_path):
    path = tmp_path / "old.db"
    _v1_store(path)
    with open_store(path) as store:
        a = store.get("a")
        assert (a.status, a.record, a.host) == ("done", {"loss": 2.5}, None)
        store.register_runner()
        [b] = store.claim(limit=5)
        assert b.run_key == "b" and b.host
        assert store.finish("b", "done", {"loss": 1.0}, host="n1")
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    db.execute("UPDATE meta SET value='3' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(UserError, match="newer ftscale"):
        SQLiteStore(path)


def test_a_database_url_is_never_a_file_path(tmp_path):
    """`study run --store postgresql://...` with nothing listening: a one-line error, exit 2,
    and no folder named `postgresql:` (the old behaviour)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from pathlib import Path

    tiny = Path(__file__).resolve().parents[2] / "examples" / "tiny.toml"
    for store in (f"postgresql://postgres@127.0.0.1:{port}/ftscale", "mysql://x@h/d"):
        proc = subprocess.run(
            [sys.executable, "-m", "ftscale", "study", "status", str(tiny), "--store", store],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("ftscale: error: ")
        assert list(tmp_path.iterdir()) == []


def test_a_missing_postgresql_database_is_created_once_by_concurrent_runners(postgres_server):
    import threading

    from ftscale.study.storage import store_exists

    url = postgres_server.url("made_on_first_use")
    assert not store_exists(url)
    with pytest.raises(UserError, match="no run store yet"):
        open_store(url, must_exist=True)
    errors = []

    def open_one(i):
        try:
            with open_store(url) as store:
                store.add_runs([(f"k{i}", {})])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and store_exists(url)
    with open_store(url) as store:
        assert store.counts()["pending"] == 4
