"""The live state of a study being run: progress per method, model and data size, the
seed-mean points landed so far, and the current fit and answer, refitted when runs finish.

:class:`LiveStudy` polls the run store from one thread (SQLite connections stay in the thread
that opened them) and refits in another, so a slow bootstrap never delays the progress. The
store is read through :func:`read_store` only, the one place that knows the store's API.
``ftscale study serve`` (:mod:`ftscale.report.serve`) shows :meth:`LiveStudy.state` in a page.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftscale.analysis.health import method_label
from ftscale.errors import UserError
from ftscale.report.figures import chosen_fits
from ftscale.study.spec import Study

#: Points of each fitted curve on the page (log-spaced data sizes).
CURVE_POINTS = 40


def read_store(store_path: Path, keys: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The stored runs among ``keys`` as plain rows (``run_key``, ``spec``, ``status``,
    ``record``, ``error``, ``started_at``, ``finished_at``: seconds since the epoch) and the host
    of each running run (``{run_key: "host:pid"}``). The only reader of the store here."""
    from ftscale.study.store import RunStore

    with RunStore(store_path) as store:
        rows = [
            {
                "run_key": r.run_key,
                "spec": r.spec,
                "status": r.status,
                "record": r.record,
                "error": r.error,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
            }
            for r in store.runs(keys)
        ]
        hosts = {
            h["run_key"]: f"{h['host']}:{h['pid']}" if h.get("host") else "unknown host"
            for h in store.held_elsewhere(keys)
        }
    return rows, hosts


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def _first_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "no error text"


def progress(
    planned: list[tuple[str, dict[str, Any]]],
    rows: list[dict[str, Any]],
    hosts: dict[str, str],
    now: float,
) -> dict[str, Any]:
    """Counts per (task, method, model, PET size, data size), totals and an ETA.

    The ETA (seconds) divides the expected time of the unfinished runs (the mean duration of
    the finished runs of the same method and model, else of all finished runs, less the time
    a running run has already run) by the number of runs running now; None while nothing runs
    or no run has finished."""
    stored = {r["run_key"]: r for r in rows}
    cells: dict[tuple, dict[str, Any]] = {}
    totals = {s: 0 for s in ("done", "running", "failed", "diverged", "pending")}
    durations: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        if r["status"] == "done" and r["started_at"] and r["finished_at"]:
            key = (r["spec"]["method"], r["spec"]["model"])
            durations.setdefault(key, []).append(r["finished_at"] - r["started_at"])
    every = [d for ds in durations.values() for d in ds]
    overall = sum(every) / len(every) if every else None
    left = 0.0
    for key, spec in planned:
        run = stored.get(key)
        status = "pending" if run is None else run["status"]
        ident = (spec["task"], spec["method"], spec["model"], spec.get("pet_size"))
        cell = cells.setdefault(
            (*ident, spec["data_size"]),
            {
                "task": spec["task"],
                "method": spec["method"],
                "model": spec["model"],
                "pet_size": spec.get("pet_size"),
                "data_size": spec["data_size"],
                "total": 0,
                **dict.fromkeys(totals, 0),
                "hosts": [],
                "errors": [],
            },
        )
        cell["total"] += 1
        cell[status] += 1
        totals[status] += 1
        if status == "running":
            cell["hosts"].append(hosts.get(key, "this host"))
        elif status in ("failed", "diverged"):
            why = _first_line(run["error"]) if status == "failed" else "diverged (loss not finite)"
            cell["errors"].append(f"seed {spec['seed']}: {why}")
        if status in ("pending", "running"):
            ds = durations.get((spec["method"], spec["model"]))
            expect = sum(ds) / len(ds) if ds else overall
            if expect is not None:
                ran = now - run["started_at"] if status == "running" and run["started_at"] else 0
                left += max(expect - ran, 0.0)
    running = totals["running"]
    eta = left / running if running and overall is not None else None
    totals["total"] = len(planned)
    totals["finished"] = totals["done"] + totals["failed"] + totals["diverged"]
    return {
        "totals": totals,
        "eta_seconds": eta,
        "mean_run_seconds": overall,
        "cells": list(cells.values()),
    }


def live_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed means of the finished runs' test losses (nats/token) per (task, method, model, PET
    size, data size), with ``n`` the runs averaged."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        rec = r["record"] or {}
        if r["status"] != "done" or not _finite(rec.get("loss")):
            continue
        s = r["spec"]
        groups.setdefault(
            (s["task"], s["method"], s["model"], s.get("pet_size"), s["data_size"]), []
        ).append(float(rec["loss"]))
    return [
        {
            "task": k[0],
            "method": k[1],
            "model": k[2],
            "pet_size": k[3],
            "data_size": k[4],
            "loss": sum(v) / len(v),
            "n": len(v),
        }
        for k, v in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0])))
    ]


def _law_fits(doc: dict[str, Any]) -> tuple[str, dict[tuple, dict[str, Any]]]:
    """The answer's law (the chosen laws, by method) and the fits it rests on by (task,
    method)."""
    fits = chosen_fits(doc)
    laws = sorted({f"{m}: {f['law']}" for (_, m), f in fits.items()})
    law = (doc.get("answer") or {}).get("law") or ", ".join(laws) or "multiplicative"
    return law, fits


def answer_facts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per task, what the answer says (read defensively: the chosen law, its held-out error
    and the interval where the document has them, else from the fit and the ranking):
    ``{"task", "best", "best_label", "model", "factor_value", "data_size" (examples),
    "predicted_loss", "interval" (nats/token), "p_best", "n_draws", "law", "heldout_error"
    (nats/token), "ranking", "text", "flags"}``."""
    answer = doc.get("answer") or {}
    law, fits = _law_fits(doc)
    factor = doc["factor"]
    out = []
    for a in answer.get("tasks") or []:
        best = a.get("best")
        rank = {r.get("method"): r for r in a.get("ranking") or []}.get(best) or {}
        fit = fits.get((a.get("task"), best)) or {}
        out.append(
            {
                "task": a.get("task"),
                "best": best,
                "best_label": method_label(best) if best else None,
                "model": a.get("model"),
                "factor_value": a.get(factor),
                "data_size": a.get("data_size"),
                "predicted_loss": a.get("predicted_loss", rank.get("predicted_loss")),
                "interval": a.get("interval", rank.get("interval")),
                "p_best": a.get("p_best"),
                "n_draws": a.get("n_draws"),
                "law": a.get("law") or law,
                "heldout_error": a.get("heldout_error", fit.get("delta_h")),
                "ranking": list(a.get("ranking") or []),
                "text": a.get("text"),
                "flags": [f.get("message") for f in a.get("flags") or []],
            }
        )
    return out


def fit_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a fits document: the answer per task (:func:`answer_facts`) and
    the fitted curves of the answer's law, one per (method, factor value), over the data sizes
    of the runs and twice beyond (``fitted_max``: the largest fitted data size)."""
    import numpy as np

    from ftscale.laws.io import law_from_record

    law, fits = _law_fits(doc)
    factor = doc["factor"]
    tasks = [{k: v for k, v in a.items() if k != "ranking"} for a in answer_facts(doc)]
    curves = []
    for (task, method), fit in sorted(fits.items(), key=lambda kv: tuple(map(str, kv[0]))):
        pts = [p for p in doc.get("points", []) if p["task"] == task and p["method"] == method]
        if not pts:
            continue
        try:
            model = law_from_record(fit)
        except (UserError, KeyError, ValueError):
            continue
        fitted = [p["data_size"] for p in pts if not p.get("heldout")] or [
            p["data_size"] for p in pts
        ]
        lo, hi = min(p["data_size"] for p in pts), max(p["data_size"] for p in pts)
        grid = np.geomspace(lo, hi * 2.0, CURVE_POINTS)
        for value in sorted({p[factor] for p in pts}):
            at = [p for p in pts if p[factor] == value]
            pred = model.predict(np.full(len(grid), float(value)), grid)
            curves.append(
                {
                    "task": task,
                    "method": method,
                    "model": at[0].get("model"),
                    "pet_size": at[0].get("pet_size"),
                    "factor_value": value,
                    "data_size": [float(d) for d in grid],
                    "loss": [float(y) if math.isfinite(y) else None for y in pred],
                    "fitted_max": max(fitted),
                }
            )
    return {"law": law, "tasks": tasks, "curves": curves, "notes": list(doc.get("notes") or [])}


class LiveStudy:
    """Polls a study's store every ``interval`` seconds (its own thread) and refits it (another
    thread) whenever the number of finished runs changed since the last fit.

    Args:
        study: the study (its plan names the runs shown).
        store_path: the run store; it may not exist yet (the page then waits for it).
        interval: seconds between two reads of the store.
        data_hashes: task -> data hash, as for :func:`ftscale.study.plan.plan_study`.
        fit: the fitting function (``fit(study, store_path) -> fits document``), default
            :func:`ftscale.analysis.study.fit_study` over the store; None: never fit.
    """

    def __init__(
        self,
        study: Study,
        store_path: str | Path,
        *,
        interval: float = 1.0,
        data_hashes: dict[str, str] | None = None,
        fit: Callable[[Study, Path], dict[str, Any]] | None | str = "default",
    ):
        from ftscale.study.plan import plan_study

        self.study = study
        self.store_path = Path(store_path)
        self.interval = interval
        self.data_hashes = data_hashes
        self.planned = [(r.run_key, r.spec) for r in plan_study(study, data_hashes)]
        self._fit = self._default_fit if fit == "default" else fit
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._version = 0
        self._progress: dict[str, Any] | None = None
        self._points: list[dict[str, Any]] = []
        self._fit_state: dict[str, Any] = {"status": "waiting", "finished_at_fit": None}
        self._fitting: threading.Thread | None = None
        self._store_error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="ftscale-live", daemon=True)

    # -- threads ---------------------------------------------------------------------------
    def start(self) -> LiveStudy:
        self.poll()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._fitting is not None:
            self._fitting.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        """Read the store once and start a refit if runs finished since the last fit."""
        if not self.store_path.exists():
            with self._lock:
                self._store_error = "no run store yet: waiting for `ftscale study run`"
            return
        try:
            rows, hosts = read_store(self.store_path, [k for k, _ in self.planned])
        except UserError as exc:  # locked for long, or not a store: shown, retried
            with self._lock:
                self._store_error = str(exc)
            return
        prog = progress(self.planned, rows, hosts, time.time())
        points = live_points(rows)
        with self._lock:
            changed = prog != self._progress
            self._progress, self._points, self._store_error = prog, points, None
            if changed:
                self._version += 1
            done = prog["totals"]["done"]
            due = (
                self._fit is not None
                and done > 0
                and done != self._fit_state.get("finished_at_fit")
                and (self._fitting is None or not self._fitting.is_alive())
            )
            if due:
                self._fit_state = {**self._fit_state, "status": "fitting", "started": time.time()}
                self._version += 1
                self._fitting = threading.Thread(
                    target=self._refit, args=(done,), name="ftscale-live-fit", daemon=True
                )
                self._fitting.start()

    def _default_fit(self, study: Study, store_path: Path) -> dict[str, Any]:
        from ftscale.analysis.study import fit_study
        from ftscale.study.store import RunStore

        with RunStore(store_path) as store:
            return fit_study(study, store, self.data_hashes)

    def _refit(self, done: int) -> None:
        t0 = time.time()
        try:
            summary = fit_summary(self._fit(self.study, self.store_path))
            state = {"status": "ok", **summary}
        except UserError as exc:
            state = {"status": "none", "message": str(exc)}
        except Exception as exc:  # a fit that breaks must not take the page down
            state = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
        state.update(finished_at_fit=done, fitted_at=time.time(), fit_seconds=time.time() - t0)
        with self._lock:
            self._fit_state = state
            self._version += 1

    # -- reading ---------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The page's JSON: ``version`` (grows with every change), ``study``, ``store``,
        ``factor``, ``progress`` (:func:`progress`; None before the store exists), ``points``
        (:func:`live_points`), ``fit`` (``status`` waiting | fitting | ok | none | error, and
        :func:`fit_summary`'s fields once fitted), ``colours`` and ``labels`` per method,
        ``store_error`` and ``now`` (seconds since the epoch)."""
        from ftscale.report.figures import method_colour

        with self._lock:
            methods = sorted({s["method"] for _, s in self.planned})
            return {
                "version": self._version,
                "study": self.study.name,
                "store": str(self.store_path),
                "factor": self.study.factor,
                "progress": self._progress,
                "points": self._points,
                "fit": self._fit_state,
                "colours": {m: method_colour(m) for m in methods},
                "labels": {m: method_label(m) for m in methods},
                "store_error": self._store_error,
                "now": time.time(),
            }
