"""A study's runs by status: totals, per (method, model), per host, and why runs failed
(``ftscale study status``)."""

from __future__ import annotations

from typing import Any

from ftscale.study.plan import plan_study
from ftscale.study.spec import Study


def study_status(study: Study, store_path: str) -> dict[str, Any]:
    """``{"study", "store", "totals", "by", "hosts", "errors", "failures"}`` of the planned runs
    in the store at ``store_path`` (which must exist). ``totals`` counts each status plus
    ``new`` (planned, not in the store yet); ``by`` one row per (method, model); ``hosts`` one
    row per host that claimed runs; ``errors`` the first line of each failed run's error;
    ``failures`` each failed or diverged run with its reason."""
    from ftscale.study.storage import STATUSES, describe_store, open_store

    keys = [r.run_key for r in plan_study(study)]
    table: dict[tuple[str, str], dict[str, int]] = {}
    hosts: dict[str, dict[str, int]] = {}
    errors, failures = [], []
    with open_store(store_path, must_exist=True) as store:
        stored = {r.run_key: r for r in store.runs(keys)}
        for key in keys:
            run = stored.get(key)
            if run is None:  # planned after the last run (counted as new below)
                continue
            counts = table.setdefault(
                (run.spec["method"], run.spec["model"]), dict.fromkeys(STATUSES, 0)
            )
            counts[run.status] += 1
            if run.host is not None and run.status != "pending":
                hosts.setdefault(run.host, dict.fromkeys(STATUSES[1:], 0))[run.status] += 1
            if run.status == "failed" and run.error:
                errors.append({"run_key": key, "error": run.error.splitlines()[0]})
            if run.status in ("failed", "diverged"):
                reason = (run.error or "").strip().splitlines()
                failures.append(
                    {
                        "run_key": key,
                        "status": run.status,
                        "host": run.host,
                        "attempts": run.attempts,
                        "reason": reason[0] if reason else _no_reason(run.status),
                        **{k: run.spec[k] for k in ("method", "model", "data_size", "seed")},
                    }
                )
    totals = dict.fromkeys(STATUSES, 0)
    for counts in table.values():
        for k, v in counts.items():
            totals[k] += v
    totals["new"] = len(keys) - len(stored)
    return {
        "study": study.name,
        "store": describe_store(store_path),
        "totals": totals,
        "by": [{"method": m, "model": mo, **c} for (m, mo), c in sorted(table.items())],
        "hosts": [{"host": h, **c} for h, c in sorted(hosts.items())],
        "errors": errors,
        "failures": failures,
    }


def _no_reason(status: str) -> str:
    return "the loss diverged (NaN or inf)" if status == "diverged" else "no reason recorded"
