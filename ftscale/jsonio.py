"""JSON text of the project's documents (fits, reports, records): numpy scalars become Python
numbers and NaN/inf become null, so every file and every ``--json`` line is valid JSON."""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: numpy scalars and arrays to Python, NaN/inf to null."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if np is not None:
        if isinstance(obj, np.ndarray):
            return [json_safe(v) for v in obj.tolist()]
        if isinstance(obj, np.generic):
            obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json_text(obj: Any) -> str:
    """``obj`` as indented JSON text with a final newline (see :func:`json_safe`)."""
    return json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n"
