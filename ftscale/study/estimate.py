"""Cost estimates for planned runs from measured throughput.

The measurement is the study's own finished runs: the mean wall seconds of finished runs of the
same (model, method), or, where a (model, method) has none yet, of the same method on other
models scaled by training FLOPs per token (~ parameter count). Nothing is estimated from
figures that were not measured on this study's machine: where nothing is measured the estimate
is None and the basis says so.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import fmean
from typing import Any


def estimate_runs(specs: list[dict[str, Any]], measured: list[dict[str, Any]]) -> dict[str, Any]:
    """Estimated wall seconds per planned run (None where nothing comparable was measured).

    Args:
        specs: planned run specs.
        measured: records of finished runs (need ``model``, ``method``, ``train_seconds``;
            ``model_size`` enables scaling across models).
    Returns:
        ``{"per_run": [...], "total_seconds": float | None, "basis": str}``.
    """
    by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    per_param: dict[str, list[float]] = defaultdict(list)
    sizes: dict[str, float] = {}
    for rec in measured:
        secs = rec.get("train_seconds")
        if not isinstance(secs, int | float) or secs <= 0:
            continue
        by_pair[(rec["model"], rec["method"])].append(float(secs))
        size = rec.get("model_size")
        if isinstance(size, int | float) and size > 0:
            sizes[rec["model"]] = float(size)
            per_param[rec["method"]].append(float(secs) / float(size))
    per_run: list[float | None] = []
    for spec in specs:
        pair = (spec["model"], spec["method"])
        if pair in by_pair:
            per_run.append(fmean(by_pair[pair]))
        elif spec["model"] in sizes and per_param.get(spec["method"]):
            per_run.append(fmean(per_param[spec["method"]]) * sizes[spec["model"]])
        else:
            per_run.append(None)
    known = [e for e in per_run if e is not None]
    if not measured:
        basis = "no finished runs yet: estimates appear once some runs have finished"
    else:
        basis = f"mean wall seconds of {len(measured)} finished runs of this study"
    if known and len(known) < len(per_run):
        basis += f"; {len(per_run) - len(known)} runs without a comparable measurement"
    total = sum(known) if known else None
    return {"per_run": per_run, "total_seconds": total, "basis": basis}
