import pytest

from ftscale.errors import UserError
from ftscale.fsutil import OUTPUT_MARKER, atomic_dir, atomic_write


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_replaces(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "new"


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target, kind="report") as tmp:
        (tmp / "a").write_text("1")
    assert (target / OUTPUT_MARKER).read_text().strip() == "report"
    with pytest.raises(RuntimeError), atomic_dir(target, kind="report") as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "a"]
    with atomic_dir(target, kind="report") as tmp:
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [OUTPUT_MARKER, "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_atomic_dir_never_replaces_a_users_folder(tmp_path):
    target = tmp_path / "mydata"
    target.mkdir()
    (target / "important.txt").write_text("keep")
    for kind in (None, "report"):
        with pytest.raises(UserError, match="did not write"), atomic_dir(target, kind) as tmp:
            (tmp / "x").write_text("new")
    # Another kind's marker does not make the folder this kind's to replace.
    (target / OUTPUT_MARKER).write_text("checkpoint\n")
    with pytest.raises(UserError), atomic_dir(target, "report"):
        pass
    assert (target / "important.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata"]


def test_atomic_dir_refuses_a_file_and_accepts_empty_or_owned(tmp_path):
    f = tmp_path / "out"
    f.write_text("keep")
    with pytest.raises(UserError, match="not a folder"), atomic_dir(f, "report"):
        pass
    assert f.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty, "report") as tmp:
        (tmp / "r").write_text("1")
    assert (empty / "r").exists()
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "report.html").write_text("old")
    with atomic_dir(legacy, "report", owned=lambda e: e.name.startswith("report.")) as tmp:
        (tmp / "report.html").write_text("new")
    assert (legacy / "report.html").read_text() == "new"
    # A user's file beside the legacy ones: the whole folder is refused.
    (legacy / OUTPUT_MARKER).unlink()
    (legacy / "notes.txt").write_text("mine")
    with pytest.raises(UserError), atomic_dir(legacy, owned=lambda e: e.name.startswith("report.")):
        pass
    assert (legacy / "notes.txt").read_text() == "mine"


def test_unwritable_places_are_one_line_errors(tmp_path):
    # issue 17, defect 9: a read-only folder, a folder named as the file, a file as a parent
    import os

    if os.geteuid() == 0:
        ro = None  # root writes through permission bits; the other cases still apply
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    targets = [tmp_path, blocker / "sub" / "out.json"] + ([ro / "out.json"] if ro else [])
    for target in targets:
        with pytest.raises(UserError), atomic_write(target) as fh:
            fh.write("x")
    assert blocker.read_text() == "keep"


def test_a_full_disk_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno
    import os

    target = tmp_path / "out.txt"
    target.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match="No space left"), atomic_write(target) as fh:
        fh.write("new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
