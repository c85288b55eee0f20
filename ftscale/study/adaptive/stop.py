"""Stopping criteria of the adaptive loop (``--until``)."""

from __future__ import annotations

import re
from typing import Any

from ftscale.errors import UserError

_CRIT = re.compile(r"^\s*(p_best|width|uncertainty)\s*(>=|<=|>|<)\s*([0-9.eE+-]+)\s*$")


def parse_until(text: str, kind: str) -> tuple[str, str, float]:
    """``"p_best >= 0.95"`` (recommend), ``"width <= 0.3"`` (critical; log10 examples) or
    ``"uncertainty <= X"`` -> (metric, op, value)."""
    m = _CRIT.match(text or "")
    if not m:
        raise UserError(
            f"--until: expected 'p_best >= P', 'width <= W' or 'uncertainty <= U', got {text!r}"
        )
    metric, op, value = m.group(1), m.group(2), float(m.group(3))
    if metric == "p_best" and kind != "recommend":
        raise UserError("--until p_best needs a recommend question")
    if metric == "width" and kind != "critical":
        raise UserError("--until width needs a critical question")
    return metric, op, value


def criterion_holds(current: dict[str, Any] | None, crit: tuple[str, str, float]) -> bool:
    """Whether the answer ``current`` (:func:`current_answer`) meets ``crit``."""
    if current is None:
        return False
    metric, op, value = crit
    v = current["p_best"] if metric == "p_best" else current["uncertainty"]
    return {">=": v >= value, "<=": v <= value, ">": v > value, "<": v < value}[op]
