"""Helpers shared by the command modules."""

from __future__ import annotations

import json
import sys
from typing import Any

from ftscale.jsonio import json_safe, to_json_text

__all__ = ["print_json", "to_json_text"]


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (NaN/inf become null, so the output is valid JSON)."""
    json.dump(json_safe(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
