"""Executor back ends, chosen by name: one file each plus one line in ``EXECUTORS``.

An executor runs run specs somewhere (worker processes here, Ray tasks on a cluster) and hands
outcomes back to the driver; only the driver writes the store.
"""

from __future__ import annotations

from ftscale.study.executors.base import Executor, Outcome

#: name -> "module:class", imported on use so that Ray is needed only by the Ray back end.
EXECUTORS: dict[str, str] = {
    "local": "ftscale.study.executors.local:LocalExecutor",
    "ray": "ftscale.study.executors.ray:RayExecutor",
}


def make_executor(name: str, **kwargs) -> Executor:
    """Build the executor registered as ``name``."""
    import importlib

    from ftscale.errors import UserError

    if name not in EXECUTORS:
        raise UserError(f"unknown backend '{name}' (known: {', '.join(EXECUTORS)})")
    module, cls = EXECUTORS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = ["EXECUTORS", "Executor", "Outcome", "make_executor"]
