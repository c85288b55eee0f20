"""File helpers. Crash-safe writing: every file ftscale produces is written to a temporary path
beside its destination and renamed into place, so an interrupted write never leaves a half-written
file where a complete one is expected (and never destroys the previous complete one). Reading a
user's JSON or TOML file turns every problem into a one-line
:class:`~ftscale.errors.UserError`."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

#: Errors of the place written to, not of the program: a one-line UserError each.
_WRITE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EIO,
    errno.EFBIG,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
}


def _write_error(exc: OSError, path: Path) -> Exception:
    from ftscale.errors import UserError

    if exc.errno in _WRITE_ERRNOS:
        return UserError(f"cannot write here: {exc.strerror}", path=str(path))
    return exc


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. A full,
    read-only or forbidden place is a one-line UserError; so is a ``path`` that is a folder.
    """
    path = Path(path)
    if path.is_dir():
        from ftscale.errors import UserError

        raise UserError("output path is a folder; give a file name", path=str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _write_error(exc, path) from None
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and (err := _write_error(exc, path)) is not exc:
            raise err from None
        raise


#: Written into every folder :func:`atomic_dir` builds with a ``kind``: the proof that a later
#: write may replace the folder (ftscale never deletes a folder it cannot show it wrote).
OUTPUT_MARKER = ".ftscale-output"


def _replaceable(path: Path, kind: str | None, owned: Callable[[Path], bool] | None) -> bool:
    """Whether the existing folder ``path`` may be replaced: empty, marked by ftscale as ``kind``,
    or every entry in it accepted by ``owned`` (folders written before the marker existed)."""
    entries = list(path.iterdir())
    if not entries:
        return True
    marker = path / OUTPUT_MARKER
    if kind is not None and marker.is_file():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            if marker.read_text(encoding="utf-8").strip() == kind:
                return True
    return owned is not None and all(owned(e) for e in entries)


@contextlib.contextmanager
def atomic_dir(
    path: str | os.PathLike,
    kind: str | None = None,
    owned: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``path``, then rename it into place.

    Yields the temporary directory to fill. An existing ``path`` is replaced only after the new
    one is complete, and only if ftscale can tell it wrote it: an empty folder, a folder holding
    the :data:`OUTPUT_MARKER` of the same ``kind`` (written into every folder built with a
    ``kind``), or one whose every entry ``owned`` accepts. Anything else (a user's folder, a
    file) raises :class:`~ftscale.errors.UserError` before any work and is left untouched.
    """
    import shutil

    from ftscale.errors import UserError

    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir() or path.is_symlink():
            raise UserError(
                "output path exists and is not a folder; choose another path", path=str(path)
            )
        if not _replaceable(path, kind, owned):
            raise UserError(
                "output folder exists and holds files ftscale did not write; choose another "
                "path or empty it (nothing was changed)",
                path=str(path),
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise UserError(
            f"cannot create the output folder: {exc.strerror}", path=str(path)
        ) from None
    try:
        yield tmp
        if kind is not None:
            (tmp / OUTPUT_MARKER).write_text(kind + "\n", encoding="utf-8")
        if path.exists():
            # A fresh hidden name for the old folder: never one a user could own.
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_user_json(path: str | os.PathLike, what: str) -> Any:
    """Parse the JSON file ``path`` given by the user; ``what`` names it in errors ("config")."""
    import json

    from ftscale.errors import UserError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} file not found", path=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} is not valid JSON: {exc}", path=str(path)) from None


def read_user_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """Parse the TOML file ``path`` given by the user; ``what`` names it in errors ("study")."""
    import tomllib

    from ftscale.errors import UserError

    if not Path(path).is_file():
        raise UserError(f"{what} file not found", path=str(path))
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML ({exc})", path=str(path)) from None
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", path=str(path)) from None
