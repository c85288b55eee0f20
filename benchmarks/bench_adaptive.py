"""Adaptive study design against the full grid, at equal certainty, on simulated studies.

Each simulated study has a known multiplicative law per method (FMT and one PET method) drawn
around the paper's Table 4 fits (docs: /work/shared/docs/PAPER.md; the row, the PET method and
a jitter of A (x e^N(0, 0.3)), alpha and beta (x U(0.85, 1.15)) per study), with the PET law's E
then set so that the two methods cross at a critical data size log-uniform in [300, 3000]
examples at the largest model (Table 4's own laws mostly cross outside any practical grid),
and uniform seed noise of half-width U(0.003, 0.01) nats/token. Grid: models 1e9..16e9 (x2),
data sizes 100..10000 (half-decades), 3 seeds, 2 methods; no hold-out (fit.holdout_largest = []).

Baseline (same invocation): run the whole grid, fit, and measure the question's uncertainty
U_grid (:func:`ftscale.study.adaptive.current_answer`: P(not best) of the recommendation at the
largest model and data size ("recommend"), or at 1000 examples, near the true crossings
("recommend-mid"), or the width in log10 examples of the critical data size's 95%
interval at the largest model). Adaptive: from an empty store, ``run_adaptive`` with rounds of
``--round-size`` runs until its uncertainty is at most U_grid (or the grid is exhausted). Cost of
either: the sum of model_size x data_size / 1e9 of the runs made (the simulated runs have no
time; the relative cost model of the adaptive module). Prints per study and the mean
``cost_ratio`` = adaptive / grid, plus how far each answer lies from the truth.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_adaptive.py --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean

import numpy as np

#: The paper's Table 4 (FMT / Prompt / LoRA): A, alpha (model), beta, E.
TABLE4 = {
    "En-De": {"fmt": (1.2e5, 0.52, 0.15, 0.75), "prompt": (3.9e3, 0.40, 0.051, 0.62),
              "lora": (2.1e3, 0.36, 0.081, 0.62)},
    "En-Zh": {"fmt": (3.3e3, 0.34, 0.14, 1.0), "prompt": (850, 0.33, 0.015, 0.77),
              "lora": (660, 0.31, 0.025, 0.73)},
    "MLSum": {"fmt": (330, 0.24, 0.087, 0.98), "prompt": (23, 0.10, 0.025, 0.00051),
              "lora": (26, 0.11, 0.03, 0.20)},
}  # fmt: skip
MODELS = (1e9, 2e9, 4e9, 8e9, 16e9)
DATA_SIZES = (100, 300, 1000, 3000, 10000)
#: The data size of the "recommend-mid" question: inside the range of the true crossings, so
#: the recommendation there is contested.
MID = 1000
HASHES = {"sim-task": "bench"}


def loss(p: tuple, x: float, d: float) -> float:
    a, alpha, beta, e = p
    return a * x**-alpha * d**-beta + e


def draw_laws(rng: np.random.Generator) -> tuple[str, str, dict, float, float]:
    """(task row, PET method, {method: law}, true critical data size, noise half-width)."""
    while True:
        row = str(rng.choice(list(TABLE4)))
        pet = str(rng.choice(["lora", "prompt"]))
        laws = {}
        for m in ("fmt", pet):
            a, alpha, beta, e = TABLE4[row][m]
            laws[m] = [
                a * math.exp(rng.normal(0, 0.3)),
                alpha * rng.uniform(0.85, 1.15),
                beta * rng.uniform(0.85, 1.15),
                e,
            ]
        dc = 10 ** rng.uniform(math.log10(300), math.log10(3000))
        x = MODELS[-1]
        a, alpha, beta, _ = laws[pet]
        laws[pet][3] = loss(tuple(laws["fmt"]), x, dc) - a * x**-alpha * dc**-beta
        # one crossing, FMT better above it (the paper's finding): check numerically
        grid = np.geomspace(1, 1e12, 4001)
        v = np.array([loss(tuple(laws["fmt"]), x, d) - loss(tuple(laws[pet]), x, d) for d in grid])
        sign = np.flatnonzero(np.sign(v[:-1]) != np.sign(v[1:]))
        if laws[pet][3] > 0 and len(sign) == 1 and v[-1] < 0:
            return row, pet, laws, dc, float(rng.uniform(0.003, 0.01))


def study_dict(name: str, pet: str) -> dict:
    return {
        "study": {
            "name": name,
            "tasks": ["sim-task"],
            "factor": "model_size",
            "models": [f"sim-{x:.0e}".replace("+", "") for x in MODELS],
            "methods": ["fmt", pet],
            "seeds": 3,
        },
        "data_sizes": {"fmt": list(DATA_SIZES), pet: list(DATA_SIZES)},
        "training": {"steps": 10},
        "fit": {"laws": ["multiplicative"], "holdout_largest": [], "bootstrap": 100},
    }


def inline_runner(db: Path):
    """Run chosen run keys in this process (the simulated run function), through the store."""
    from ftscale.study.executors.base import execute
    from ftscale.study.store import RunStore

    def run(keys: set[str]) -> None:
        with RunStore(db) as store:
            store.register_runner()
            for r in store.claim(sorted(keys), limit=len(keys)):
                o = execute(r.spec)
                store.finish(r.run_key, o.status, o.record, o.error)

    return run


def spent(db: Path) -> tuple[int, float]:
    """(finished runs, their relative cost model_size x data_size / 1e9)."""
    from ftscale.study.store import RunStore

    n, cost = 0, 0.0
    with RunStore(db) as store:
        for r in store.runs():
            if r.status == "done":
                n += 1
                cost += r.record["model_size"] * r.record["data_size"] / 1e9
    return n, cost


def answer(study, db: Path, question: str):
    from ftscale.analysis.study import fit_study
    from ftscale.study.adaptive import (
        current_answer,
        design_state,
        fit_or_none,
        parse_question,
        resolve_question,
    )
    from ftscale.study.store import RunStore

    with RunStore(db) as store:
        doc = fit_or_none(fit_study, study, store, HASHES)
    q = resolve_question(parse_question(question, study), study, doc)
    state, _ = design_state(q, doc)
    return current_answer(state)


def one(i: int, seed: int, questions: list[str], round_size: int, tmp: Path) -> list[dict]:
    from ftscale.analysis.study import fit_study
    from ftscale.study.adaptive import run_adaptive
    from ftscale.study.plan import plan_study
    from ftscale.study.runner import sync_plan
    from ftscale.study.spec import parse_study
    from ftscale.study.store import RunStore

    rng = np.random.default_rng([seed, i])
    row, pet, laws, dc, half = draw_laws(rng)
    os.environ["FTSCALE_SIM_LAWS"] = json.dumps(laws)
    os.environ["FTSCALE_SIM_NOISE"] = str(half)
    study = parse_study(study_dict(f"bench{i}", pet))
    x = MODELS[-1]
    d_top = DATA_SIZES[-1]
    out = []
    grid_db = tmp / f"grid{i}.db"
    t0 = time.perf_counter()
    with RunStore(grid_db) as store:
        sync_plan(study, store, plan_study(study, HASHES))
    inline_runner(grid_db)({r.run_key for r in plan_study(study, HASHES)})
    n_grid, c_grid = spent(grid_db)
    grid_secs = time.perf_counter() - t0
    for kind in questions:
        qtext = {
            "recommend": "recommend",
            "recommend-mid": f"recommend at data_size={MID}",
            "critical": f"critical fmt,{pet}",
        }[kind]
        g = answer(study, grid_db, qtext)
        db = tmp / f"ad{i}_{kind}.db"
        with RunStore(db) as store:
            sync_plan(study, store, plan_study(study, HASHES))
        t1 = time.perf_counter()
        res = run_adaptive(
            study,
            db,
            inline_runner(db),
            fit_study,
            question=qtext,
            until=f"uncertainty <= {g['uncertainty']:.12g}",
            round_size=round_size,
            data_hashes=HASHES,
        )
        secs = time.perf_counter() - t1
        n_ad, c_ad = spent(db)
        a = res["current"]
        rec = {
            "study": i,
            "table4_row": row,
            "pet": pet,
            "question": kind,
            "grid_runs": n_grid,
            "grid_cost": c_grid,
            "grid_uncertainty": g["uncertainty"],
            "adaptive_runs": n_ad,
            "adaptive_cost": c_ad,
            "adaptive_uncertainty": a["uncertainty"] if a else None,
            "cost_ratio": c_ad / c_grid,
            "rounds": len(res["rounds"]),
            "stopped": res["stopped"],
            "grid_seconds": grid_secs,
            "adaptive_seconds": secs,
        }
        if kind.startswith("recommend"):
            d_q = d_top if kind == "recommend" else MID
            rec.update(
                true_best=min(laws, key=lambda m: loss(tuple(laws[m]), x, d_q)),
                grid_best=g["best"],
                adaptive_best=a["best"] if a else None,
            )
        else:
            rec.update(
                true_critical=dc,
                grid_log10_error=abs(math.log10(g["critical_data_size"] / dc)),
                adaptive_log10_error=(abs(math.log10(a["critical_data_size"] / dc)) if a else None),
            )
        out.append(rec)
    return out


def summarise(rows: list[dict], kind: str) -> dict:
    rs = [r for r in rows if r["question"] == kind]
    if not rs:
        return {}
    s = {
        "studies": len(rs),
        "cost_ratio": fmean(r["cost_ratio"] for r in rs),
        "cost_ratio_median": float(np.median([r["cost_ratio"] for r in rs])),
        "grid_cost_mean": fmean(r["grid_cost"] for r in rs),
        "adaptive_cost_mean": fmean(r["adaptive_cost"] for r in rs),
        "grid_runs_mean": fmean(r["grid_runs"] for r in rs),
        "adaptive_runs_mean": fmean(r["adaptive_runs"] for r in rs),
        "reached_grid_certainty": sum(
            r["adaptive_uncertainty"] is not None
            and r["adaptive_uncertainty"] <= r["grid_uncertainty"] + 1e-12
            for r in rs
        ),
        "adaptive_seconds_mean": fmean(r["adaptive_seconds"] for r in rs),
    }
    if kind.startswith("recommend"):
        s["grid_correct"] = sum(r["grid_best"] == r["true_best"] for r in rs)
        s["adaptive_correct"] = sum(r["adaptive_best"] == r["true_best"] for r in rs)
    else:
        s["grid_log10_error_mean"] = fmean(r["grid_log10_error"] for r in rs)
        s["adaptive_log10_error_mean"] = fmean(
            r["adaptive_log10_error"] for r in rs if r["adaptive_log10_error"] is not None
        )
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--round-size", type=int, default=4, help="runs per adaptive round")
    ap.add_argument(
        "--question",
        choices=["recommend", "recommend-mid", "critical", "both", "all"],
        default="both",
        help="both: recommend + critical; all: also recommend-mid",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ["FTSCALE_RUN_FN"] = "ftscale.testing.simulated:simulated_run"
    questions = {
        "both": ["recommend", "critical"],
        "all": ["recommend", "recommend-mid", "critical"],
    }.get(args.question, [args.question])
    rows: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.studies):
            rows += one(i, args.seed, questions, args.round_size, Path(tmp))
            if not args.json:
                for r in rows[-len(questions) :]:
                    print(
                        f"study {r['study']:2d} {r['table4_row']:5} fmt/{r['pet']:6} "
                        f"{r['question']:9}: grid {r['grid_runs']} runs cost {r['grid_cost']:.3g} "
                        f"U={r['grid_uncertainty']:.3g}; adaptive {r['adaptive_runs']} runs cost "
                        f"{r['adaptive_cost']:.3g} U={r['adaptive_uncertainty']:.3g} "
                        f"({r['stopped']}); ratio {r['cost_ratio']:.3f}",
                        flush=True,
                    )
    summary = {q: summarise(rows, q) for q in questions}
    out = {
        "benchmark": "adaptive",
        "cost_units": "model_size x data_size / 1e9 (relative)",
        "round_size": args.round_size,
        "cost_ratio": fmean(summary[q]["cost_ratio"] for q in questions),
        "by_question": summary,
        "seconds": time.perf_counter() - t0,
        "rows": rows,
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for q, s in summary.items():
            print(f"{q}: {json.dumps(s)}")
        print(f"cost_ratio (mean over questions and studies): {out['cost_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
