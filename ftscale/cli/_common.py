"""Helpers shared by the command modules."""

from __future__ import annotations

import json
import math
import sys
from typing import Any


def _clean(obj: Any) -> Any:
    """Make ``obj`` JSON-safe: numpy scalars to Python, NaN/inf to null."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if np is not None:
        if isinstance(obj, np.ndarray):
            return [_clean(v) for v in obj.tolist()]
        if isinstance(obj, np.generic):
            obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN/inf become null, so the output is valid JSON)."""
    json.dump(_clean(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def to_json_text(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, allow_nan=False) + "\n"
