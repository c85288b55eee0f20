"""Shared pieces of the law commands (fit, critical, recommend, select, demo)."""

from __future__ import annotations

import math
from typing import Any

from ftscale.errors import UserError
from ftscale.fsutil import atomic_write
from ftscale.jsonio import to_json_text
from ftscale.textfmt import fmt_num

#: Where a law command's FITS.json comes from, in its description.
FITS_FROM = (
    "a fits file written by `ftscale fit --group-by method --out FITS.json` or `ftscale study "
    "fit --out FITS.json`"
)


def fits_command(subparsers: Any, name: str, help: str, description: str) -> Any:
    """The parser of a law command that reads a fits file (``FITS.json``, its first argument)."""
    p = subparsers.add_parser(name, help=help, description=description)
    p.add_argument("fits", metavar="FITS.json")
    return p


def parse_floats(text: str, flag: str, positive: bool = True) -> list[float]:
    """``"1e9,2e9"`` -> [1e9, 2e9]; anything else is a UserError naming the flag. With
    ``positive`` (the default: factor values and data sizes) every value must be a finite
    number > 0: 0, nan and inf are refused, not passed on to the laws."""
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"{flag} takes comma-separated numbers, got {text!r}") from None
    if not vals:
        raise UserError(f"{flag} needs at least one number")
    if positive:
        bad = [v for v in vals if not (math.isfinite(v) and v > 0)]
        if bad:
            raise UserError(f"{flag} takes finite numbers > 0, got {bad[0]:g}")
    return vals


def parse_range(text: str, flag: str = "--range") -> tuple[float, float]:
    """``"LO,HI"`` data-size range (examples): two finite numbers, 0 < LO < HI."""
    vals = parse_floats(text, flag)
    if len(vals) != 2:
        raise UserError(f"{flag} takes LO,HI, got {text!r}")
    if not vals[0] < vals[1]:
        raise UserError(f"{flag} must be LO,HI with LO < HI, got {text!r}")
    return vals[0], vals[1]


def fmt_group(group: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in group.items()) or "(all)"


def write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(to_json_text(obj))


def format_rows(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A compact aligned table's lines: columns two spaces apart, numbers by :func:`fmt_num`."""
    cells = [header] + [[fmt_num(c) if not isinstance(c, str) else c for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def print_rows(header: list[str], rows: list[list[Any]]) -> None:
    """A compact aligned table on stdout."""
    for line in format_rows(header, rows):
        print(line)
