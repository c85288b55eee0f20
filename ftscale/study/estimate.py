"""Cost estimates for planned runs from measured throughput.

The measurement is the study's own finished runs: the mean wall seconds of finished runs of the
same (model, method), or, where a (model, method) has none yet, of the same method on other
models scaled by training FLOPs per token (~ parameter count). Before any run has finished,
:func:`probe_costs` measures each (task, model, method, PET size) on this machine with a short
run of a few steps, and :func:`probe_estimate` turns its phase times into an upper bound for a
whole run (its full step budget, no early stop). Nothing is estimated from figures that were
not measured on this machine: where nothing is measured the estimate is None and the basis says
so.
"""

from __future__ import annotations

import time
from collections import defaultdict
from statistics import fmean
from typing import Any


def estimate_runs(
    specs: list[dict[str, Any]],
    measured: list[dict[str, Any]],
    probes: dict[tuple, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Estimated wall seconds per planned run (None where nothing comparable was measured).

    Args:
        specs: planned run specs.
        measured: records of finished runs (need ``model``, ``method``, ``train_seconds``;
            ``model_size`` enables scaling across models).
        probes: :func:`probe_costs` results, used for runs whose (model, method) has no
            finished run.
    Returns:
        ``{"per_run": [...], "total_seconds": float | None, "basis": str}``.
    """
    probes = probes or {}
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
        elif probe_key(spec) in probes:
            per_run.append(probe_estimate(spec, probes[probe_key(spec)]))
        elif spec["model"] in sizes and per_param.get(spec["method"]):
            per_run.append(fmean(per_param[spec["method"]]) * sizes[spec["model"]])
        else:
            per_run.append(None)
    known = [e for e in per_run if e is not None]
    parts = []
    if measured:
        parts.append(f"mean wall seconds of {len(measured)} finished runs of this study")
    if probes:
        parts.append(
            f"{len(probes)} probe runs (upper bounds: the full step budget, no early stop)"
        )
    basis = "; ".join(parts) or (
        "no finished runs yet: estimates appear once some runs have finished (or probe)"
    )
    if known and len(known) < len(per_run):
        basis += f"; {len(per_run) - len(known)} runs without a comparable measurement"
    total = sum(known) if known else None
    return {"per_run": per_run, "total_seconds": total, "basis": basis}


def probe_key(spec: dict[str, Any]) -> tuple:
    """What a run's cost per step depends on, besides its training settings."""
    return (spec["task"], spec["model"], spec["method"], spec.get("pet_size"))


def probe_costs(
    specs: list[dict[str, Any]], steps: int = 6, progress: Any = None
) -> tuple[dict[tuple, dict[str, Any]], float]:
    """Time a short run of ``steps`` optimiser steps for each distinct :func:`probe_key` among
    ``specs`` (on a run with transfer evaluation if it has one, else on its smallest data
    size), with the study's own settings
    otherwise: one dev evaluation, the test loss, greedy decoding and transfer evaluation as
    the study asks. Returns ``({key: {"steps", "seconds_by_phase", "transfer"}}, startup)``
    in seconds; ``startup`` is what a fresh worker process pays once before its first run
    (measured as a 1-step run's first time minus its second). ``progress(i, n, key)`` is called
    before each probe. Runs the finetuning engine (torch).
    """
    from ftscale.finetune import run_finetune
    from ftscale.finetune.rates import lr_candidates
    from ftscale.study.runfn import spec_to_config

    def preference(spec: dict[str, Any]) -> tuple[bool, int]:
        # a transfer-evaluating run if there is one (its extra cost is measured too), else the
        # smallest data size
        return bool(spec.get("training", {}).get("transfer")), -spec["data_size"]

    chosen: dict[tuple, dict[str, Any]] = {}
    for spec in specs:
        key = probe_key(spec)
        if key not in chosen or preference(spec) > preference(chosen[key]):
            chosen[key] = spec

    def short(spec: dict[str, Any], n: int) -> Any:
        cfg = spec_to_config(spec)
        cfg.steps, cfg.epochs, cfg.min_steps, cfg.max_steps = n, None, None, None
        cfg.eval_every, cfg.patience = n, 0
        cfg.lr = lr_candidates(cfg)[0]  # time one rate's steps; the estimate counts the search
        return cfg

    out: dict[tuple, dict[str, Any]] = {}
    startup = 0.0
    if chosen:
        # a process's first run pays one-off costs (lazy imports, allocator and kernel warm-up:
        # ~6 s here) that a worker pays once, not per run: pay them before measuring
        first = next(iter(chosen.values()))
        warm = short(first, 1)
        warm.decode_examples, warm.zero_shot, warm.transfer = (
            min(warm.decode_examples, 1),
            False,
            False,
        )
        t0 = time.perf_counter()
        run_finetune(warm)
        t1 = time.perf_counter()
        run_finetune(warm)
        startup = max(0.0, (t1 - t0) - (time.perf_counter() - t1))
    for i, (key, spec) in enumerate(chosen.items()):
        if progress is not None:
            progress(i, len(chosen), key)
        cfg = short(spec, steps)
        rec = run_finetune(cfg)
        out[key] = {
            "steps": int(rec["steps"]),
            "seconds_by_phase": dict(rec["seconds_by_phase"]),
            "transfer": bool(cfg.transfer),
        }
    return out, startup


def probe_estimate(spec: dict[str, Any], probe: dict[str, Any]) -> float:
    """Upper bound on a run's wall seconds from a probe of its (task, model, method, PET size):
    set-up, zero-shot loss, test loss and decoding once; training at the probe's seconds per
    step for the run's whole step budget (times the candidates a learning-rate search trains,
    :func:`ftscale.finetune.search.search_steps`); one dev evaluation per ``eval_every`` steps;
    transfer evaluation if the run has it and the probe measured it."""
    from ftscale.finetune.config import budget_steps
    from ftscale.finetune.rates import lr_candidates
    from ftscale.finetune.search import search_steps
    from ftscale.study.runfn import spec_to_config

    cfg = spec_to_config(spec)
    budget = budget_steps(cfg)
    # a learning-rate search trains several candidates: its most steps, evaluations with them
    n_rates = len(lr_candidates(cfg))
    total = search_steps(n_rates, budget, cfg.lr_search, cfg.eval_every)
    ph = probe["seconds_by_phase"]
    per_step = ph.get("train", 0.0) / max(probe["steps"], 1)
    n_evals = -(-total // cfg.eval_every) if cfg.eval_every else n_rates
    once = sum(ph.get(k, 0.0) for k in ("setup", "zero_shot", "forget", "test_eval", "decode"))
    seconds = once + total * per_step + n_evals * ph.get("dev_eval", 0.0)
    if cfg.transfer and probe.get("transfer"):
        seconds += ph.get("transfer", 0.0)
    return seconds
