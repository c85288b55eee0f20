"""Errors that mean "the user's input is wrong", as opposed to a bug in ftscale.

The command line turns a :class:`UserError` into a one-line message on stderr and exit code 2,
never a traceback. Library code raises it with a message that names the problem and, where there
is one, the file and row/line. A pydantic validation reports its first error the same way
(:func:`validated`, :func:`problem`), without importing pydantic here.
"""

from __future__ import annotations

from typing import Any


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


#: Pydantic error types -> what the value must be (else its bound, from the error's context).
_PHRASES = {
    "int": "must be an integer",
    "int_from_float": "must be an integer",
    "float": "must be a finite number",
    "finite_number": "must be a finite number",
    "bool": "must be true or false",
    "string": "must be a string",
    "list": "must be a list",
    "tuple": "must be a list",
    "dict": "must be a table",
    ("gt", 0): "must be positive",
    ("ge", 0): "must not be negative",
    ("ge", 1): "must be a positive integer",
    "gt": "must be > {}",
    "ge": "must be at least {}",
    "lt": "must be below {}",
    "le": "must be at most {}",
}


def problem(err: dict[str, Any]) -> str:
    """One pydantic error as a phrase (``must be positive, got 0``), for one-line messages."""
    kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    if kind in ("missing", "extra_forbidden"):
        return "missing" if kind == "missing" else "not allowed"
    if kind == "literal_error":
        return f"unknown value {got!r} (known: {ctx['expected']})"
    if kind == "string_pattern_mismatch":  # the device
        return f"unknown value {got!r} (cpu, cuda, cuda:N or mps)"
    bound = next((k for k in ("gt", "ge", "lt", "le") if k in ctx), None)
    what = _PHRASES.get(kind.removesuffix("_type")) or _PHRASES.get((bound, ctx.get(bound)))
    if what is None:
        what = _PHRASES[bound].format(ctx[bound]) if bound else err["msg"]
    return f"{what}, got {got!r}"


def validated(model: Any, table: Any, where: str = "", path: Any = None) -> Any:
    """``table`` (a TOML or JSON table) validated by the pydantic ``model``; the first problem
    as a one-line :class:`UserError` naming the key (``where`` + key: ``study.seeds: ...``)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = where + ".".join(str(k) for k in err["loc"][:1])
        path = None if path is None else str(path)
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            raise UserError(f"unknown key '{key}' (allowed: {allowed})", path=path) from None
        text = err["msg"].removeprefix("Value error, ") if err["type"] == "value_error" else None
        raise UserError(f"{key.rstrip('.') or 'file'}: {text or problem(err)}", path=path) from None
