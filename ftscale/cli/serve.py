"""``ftscale study serve STUDY [--store S] [--port N] [--host H]``: a local, read-only page of
the study while ``study run`` works (:mod:`ftscale.report.serve`). Registered under ``study``
by :func:`register_serve`."""

from __future__ import annotations

import argparse
import sys


def register_serve(ssub: argparse._SubParsersAction) -> None:
    """Add ``serve`` to the ``study`` subcommands."""
    sp = ssub.add_parser(
        "serve", help="a live page of the study in the browser (read-only, this machine)"
    )
    sp.add_argument("file", help="study file (TOML)")
    sp.add_argument("--store", help="SQLite run store (default: beside the study file, .db)")
    sp.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free)")
    sp.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; the page has no login)",
    )
    sp.add_argument(
        "--interval", type=float, default=1.0, help="seconds between reads of the store (1)"
    )
    sp.add_argument("--no-fit", action="store_true", help="show progress and points, never fit")
    sp.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ftscale.errors import UserError
    from ftscale.report.live import LiveStudy
    from ftscale.report.serve import LiveServer
    from ftscale.study.runner import default_store_path
    from ftscale.study.spec import load_study

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0..65535, got {args.port}")
    if not args.interval > 0:
        raise UserError(f"--interval must be positive, got {args.interval:g}")
    study = load_study(args.file)
    store = Path(args.store) if args.store else default_store_path(study)
    live = LiveStudy(study, store, interval=args.interval, fit=None if args.no_fit else "default")
    try:
        server = LiveServer(live, host=args.host, port=args.port)
    except OSError as exc:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    print(f"serving study {study.name} at {server.url} (Ctrl-C stops)", flush=True)
    if not store.exists():
        print(f"no store yet at {store}: the page waits for `ftscale study run`", file=sys.stderr)
    server.serve_forever()
    return 0
