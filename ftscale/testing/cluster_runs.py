"""A simulated run function for cluster tests: :func:`ftscale.testing.simulated.simulated_run`,
plus what a run on a cluster must show.

``FTSCALE_RUN_FN=ftscale.testing.cluster_runs:probe_run``. If the spec has a ``task_source``
with a ``path`` (a user's data file), the run reads that file (failing as a real run would when
it cannot) and records its SHA-256 and the path it was given. Inside Ray it records the
resources Ray assigned to it and the node it ran on. ``FTSCALE_PROBE_LOG`` names a file to which
every run appends one JSON line when it starts: the path it read, its node, its pid.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ftscale.testing.simulated import simulated_run


def _ray_context() -> dict[str, Any]:
    try:
        import ray

        if not ray.is_initialized():
            return {}
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "assigned": ctx.get_assigned_resources()}
    except Exception:  # not in Ray
        return {}


def probe_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` as :func:`simulated_run` does, reading its task file first."""
    probe: dict[str, Any] = {"pid": os.getpid(), **_ray_context()}
    src = spec.get("task_source") or {}
    if src.get("path"):
        data = Path(src["path"]).read_bytes()
        probe["task_file"] = src["path"]
        probe["task_file_sha256"] = hashlib.sha256(data).hexdigest()
    log = os.environ.get("FTSCALE_PROBE_LOG")
    if log:
        run = {k: spec[k] for k in ("method", "model", "data_size", "seed")}
        line = json.dumps({**run, **probe})
        with open(log, "a") as fh:  # O_APPEND: one short write per line
            fh.write(line + "\n")
    record = simulated_run({k: v for k, v in spec.items() if k != "task_source"})
    record.update({k: v for k, v in probe.items() if k != "pid"})
    return record
