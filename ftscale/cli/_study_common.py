"""Helpers of the ``ftscale study`` subcommands: the study and its store from the arguments,
the local back end's default worker count, the Ray back end's resource flags."""

from __future__ import annotations

import argparse

from ftscale.errors import UserError


def load_args(args: argparse.Namespace):
    from ftscale.study.runner import default_store_path
    from ftscale.study.spec import load_study
    from ftscale.study.storage import parse_store

    if args.store is not None:
        parse_store(args.store)  # a bad URL fails before the study is read
    study = load_study(args.file)
    store = args.store if args.store else str(default_store_path(study))
    return study, store


def open_study_store(store: str, must_exist: bool = True):
    from ftscale.study.storage import open_store

    return open_store(store, must_exist=must_exist)


def shown_store(store: str) -> str:
    """The store's location for output (a database password redacted)."""
    from ftscale.study.storage import describe_store

    return describe_store(store)


def default_workers() -> int:
    """Runs in parallel on this machine when ``--workers`` is not given."""
    from ftscale.study.executors import local

    return local.default_workers()


def executor_kwargs(args: argparse.Namespace) -> dict:
    """The Ray back end's resource requests from ``--cpus-per-run`` etc. (checked here)."""
    import json

    out: dict = {}
    for flag in ("cpus_per_run", "gpus_per_run"):
        value = getattr(args, flag)
        if value is None:
            continue
        if not value >= 0 or (flag == "cpus_per_run" and value == 0):
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value:g}")
        out[flag] = value
    if args.resources is not None:
        try:
            res = json.loads(args.resources)
        except ValueError:
            res = None
        if not isinstance(res, dict) or not all(
            isinstance(v, int | float) and v > 0 for v in res.values()
        ):
            raise UserError(
                f"--resources must be a JSON object of positive numbers, got {args.resources!r}"
            )
        out["resources"] = res
    if args.ship_files is not None:
        out["ship_files"] = args.ship_files
    if out and args.backend != "ray":
        raise UserError(
            "--cpus-per-run, --gpus-per-run, --resources and --ship-files need --backend ray"
        )
    return out
