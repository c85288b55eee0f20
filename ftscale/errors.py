"""Errors that mean "the user's input is wrong", as opposed to a bug in ftscale.

The command line turns a :class:`UserError` into a one-line message on stderr and exit code 2,
never a traceback. Library code raises it with a message that names the problem and, where there
is one, the file and row/line.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a missing file or column, an impossible value, an unknown name."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")


class ConvergenceWarning(UserWarning):
    """A fit or run finished without meeting its convergence criterion."""
