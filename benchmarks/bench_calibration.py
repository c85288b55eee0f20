"""Calibration of ``study fit``'s answers on simulated studies with known truth.

Each simulated study: FMT and one PET method (LoRA or prompt tuning) with a known law per method
drawn around the paper's Table 4 fits (Zhang et al., ICLR 2024; the rows of
benchmarks/bench_adaptive.py: A x e^N(0, 0.3), alpha and beta x U(0.85, 1.15)), in half the
studies with a pre-power phase (Lin et al. 2024): L = A X^-alpha (D + D_l)^-beta + E with D_l
log-uniform in [100, 3000] examples (else D_l = 0). The PET law's E is set so that the methods
cross at a critical data size log-uniform in [30, 30000] examples at the middle model (the
grid's data sizes span 100..3000: crossings inside and outside it). Seed noise: Gaussian with
the demo's pooled seed standard deviation per run (SEED_SD, measured on the demo store), 2
seeds per point as in the demo. Grid: 4 models (1e9..8e9), 4 data sizes per method (FMT 100..
3000, PET 50..1500: 1.5 decades, as the demo's), the largest model and data size held out per
method, as the demo's ``fit`` settings do.

Fitted twice in the same run, on the same points: "baseline" is today's fit before this
benchmark (multiplicative and additive laws, the answer from the multiplicative one, 100
bootstrap refits resampling the seed-mean points, no cross-validation; its held-out intervals
are the bootstrap's prediction intervals); "new" is ``study fit``'s default (``laws =
["auto"]``: every two-factor law, chosen per method by cross-validated extrapolation error,
parametric bootstrap from the noise model widened by the CV errors, the critical data sizes and
P(best) from the draws of all the laws pooled by inverse CV error; ftscale.analysis.calibrate).

Prints, for both: ``coverage_heldout`` (share of held-out seed-mean points of the used law inside
their 95% interval), ``coverage_critical`` (share of true critical data sizes, at each model
size where the truth crosses in SCOPE (10..1e5 examples, searched there for the fit too),
inside the fit's 95% interval; a crossing the fit
gives no interval for counts as missed; ``critical_bounded``, the share of those intervals with
both ends, and ``critical_median_decades``, their median width, say how much they tell; the baseline's interval is today's
``critical_data_size_ci``, over the draws that cross, the new one ``critical_data_size_interval``,
over all draws, a draw without a crossing counting as one beyond the range), ``reliability_pbest`` (among recommendations, at each
model size at the largest data size all methods ran, and the study's answer, those with P(best)
>= 0.95: the share naming the true best method), mean |Delta_h| of the used law, and the fitting
seconds (``time_ratio`` = new / baseline).

``--zero-shot MODE`` gives every simulated model a zero-shot loss Z (the runs' ``zero_shot_loss``),
so that ``auto`` also fits the covariate laws of Z (docs/laws.md): Z is the FMT truth at one
example at an "effective" model size X e^N(0, 0.25) (a family's uneven members). ``shared``:
the finetuned losses of every method follow that effective size too (Z carries what the size
does not: the case the zero-shot laws are for); ``unrelated``: they follow the nominal size X,
so Z's unevenness is noise the finetuning curves do not share (the case where the zero-shot laws
must not mislead). ``none`` (default): no Z, the covariate laws are not fitted.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_calibration.py --studies 40 --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_adaptive import TABLE4  # noqa: E402

#: Pooled seed standard deviation of one run's test loss (nats/token) on the demo store
#: (runs/demo/study.db: ftlm-1..4, FMT/LoRA/prompt, 2 seeds; measured with
#: ftscale.analysis.calibrate.seed_variance over each method's points, then the mean of the
#: three methods' standard deviations).
SEED_SD = 0.02
MODELS = (1e9, 2e9, 4e9, 8e9)
SIZES = {"fmt": (100, 300, 1000, 3000), "pet": (50, 150, 500, 1500)}
SEEDS = 2
#: The data sizes (examples) where critical data sizes are asked for: from 0.7 decades below
#: the smallest run to 1.5 decades above the largest. Both the truth's first crossing and the
#: fit's are searched here (a law's crossing at 2 examples, far below any run, is neither
#: measurable nor a question a user asks); a truth without a crossing here is not counted.
SCOPE = (10.0, 1e5)


#: Spread of a model's "effective" size around its nominal one (log scale) in --zero-shot modes.
UNEVEN = 0.25


def true_loss(p: dict, x, d):
    return (
        p["A"]
        * np.asarray(x, float) ** -p["alpha"]
        * (np.asarray(d, float) + p["D_l"]) ** -p["beta"]
        + p["E"]
    )


def draw_study(rng: np.random.Generator, zero_shot: str = "none") -> dict:
    """{"laws": {method: params}, "pet": name, "eff": {nominal size: size the truth uses},
    "zero_shot": {nominal size: Z} (empty for ``zero_shot`` "none")} with one crossing at the
    middle model."""
    while True:
        row = str(rng.choice(list(TABLE4)))
        pet = str(rng.choice(["lora", "prompt"]))
        pre = bool(rng.random() < 0.5)
        laws = {}
        for m in ("fmt", pet):
            a, alpha, beta, e = TABLE4[row][m]
            laws[m] = {
                "A": a * math.exp(rng.normal(0, 0.3)),
                "alpha": alpha * rng.uniform(0.85, 1.15),
                "beta": beta * rng.uniform(0.85, 1.15),
                "D_l": 10 ** rng.uniform(2, math.log10(3000)) if pre else 0.0,
                "E": e,
            }
        dc = 10 ** rng.uniform(math.log10(30), math.log10(30000))
        x = MODELS[1]
        p = laws[pet]
        p["E"] = float(true_loss(laws["fmt"], x, dc) - (true_loss(p, x, dc) - p["E"]))
        if p["E"] <= 0.05:
            continue
        study = {"laws": laws, "pet": pet, "row": row, "pre_power": pre}
        study["eff"] = {x: x for x in MODELS}
        study["zero_shot"] = {}
        if zero_shot != "none":  # (no draws otherwise: "none" keeps the figures of before)
            shifted = {x: x * math.exp(rng.normal(0, UNEVEN)) for x in MODELS}
            study["zero_shot"] = {x: float(true_loss(laws["fmt"], shifted[x], 1.0)) for x in MODELS}
            if zero_shot == "shared":
                study["eff"] = shifted
        return study


def simulate_points(study: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Seed-mean points as ``points_frame`` makes them from a store."""
    rows = []
    for m, p in study["laws"].items():
        sizes = SIZES["fmt" if m == "fmt" else "pet"]
        for i, x in enumerate(MODELS):
            for d in sizes:
                runs = true_loss(p, study["eff"][x], d) + rng.normal(0, SEED_SD, SEEDS)
                rows.append(
                    {
                        "task": "sim",
                        "method": m,
                        "model": f"m{i}",
                        "pet_size": None,
                        "model_size": x,
                        "data_size": float(d),
                        "loss": float(runs.mean()),
                        "loss_std": float(runs.std(ddof=0)),
                        "n_seeds": SEEDS,
                        "zero_shot_loss": study["zero_shot"].get(x),
                    }
                )
    return pd.DataFrame(rows)


def true_crossing(study: dict, x: float) -> float | None:
    (m1, p1), (m2, p2) = study["laws"].items()
    grid = np.geomspace(*SCOPE, 20001)
    x = study["eff"].get(x, x)
    v = true_loss(p1, x, grid) - true_loss(p2, x, grid)
    hit = np.flatnonzero(np.sign(v[:-1]) * np.sign(v[1:]) < 0)
    return float(grid[hit[0]]) if hit.size else None


def true_best(study: dict, x: float, d: float) -> str:
    x = study["eff"].get(x, x)
    return min(study["laws"], key=lambda m: float(true_loss(study["laws"][m], x, d)))


def _heldout_cover(doc: dict, law: str | None) -> list[tuple[bool, float]]:
    """(inside, |error|) of every held-out point of the used fits."""
    from ftscale.laws.io import law_from_record

    out = []
    for f in doc["fits"]:
        used = f.get("chosen") if law is None else f["law"] == law
        if not used:
            continue
        pts = f.get("heldout_points")
        if pts is None:  # the baseline: the bootstrap's prediction interval
            held = [
                p for p in doc["points"] if p["method"] == f["group"]["method"] and p["heldout"]
            ]
            law_obj = law_from_record(f)
            x = np.array([p["model_size"] for p in held])
            d = np.array([p["data_size"] for p in held])
            iv = law_obj.predict_interval(x, d)
            pred = law_obj.predict(x, d)
            pts = [
                {"observed": p["loss"], "predicted": float(pr), "lo": float(a), "hi": float(b)}
                for p, pr, a, b in zip(held, pred, iv[0], iv[1], strict=True)
            ]
        for p in pts:
            if p["lo"] is None:
                continue
            out.append((p["lo"] <= p["observed"] <= p["hi"], abs(p["observed"] - p["predicted"])))
    return out


def score(doc: dict, study: dict, law: str | None, ci_key: str) -> dict:
    """One study's checks; ``ci_key``: the critical data size's interval field (today's
    ``critical_data_size_ci`` over the crossing draws, or ``critical_data_size_interval`` over
    all draws, a draw without a crossing counting as one beyond the range)."""
    held = _heldout_cover(doc, law)
    from ftscale.analysis.study import critical_table

    crit = []
    values = sorted({p["model_size"] for p in doc["points"]})
    for c in critical_table(doc["fits"], values, search=SCOPE):
        for p in c["points"]:
            truth = true_crossing(study, p["x"])
            if truth is None:
                continue
            ci = p.get(ci_key)
            inside = bool(ci and ci[0] is not None and ci[0] <= truth <= (ci[1] or math.inf))
            bounded = bool(ci and ci[0] is not None and ci[1] is not None)
            crit.append((inside, math.log10(ci[1] / ci[0]) if bounded else math.inf))
    sure = []
    for r in doc["recommendations"] + doc["answer"]["tasks"]:
        if r.get("p_best") is not None and r["p_best"] >= 0.95:
            sure.append(r["best"] == true_best(study, r["model_size"], r["data_size"]))
    return {"held": held, "crit": crit, "sure": sure}


def summarize(parts: list[dict], seconds: float) -> dict:
    held = [h for p in parts for h in p["held"]]
    crit = [c for p in parts for c in p["crit"]]
    sure = [s for p in parts for s in p["sure"]]
    return {
        "coverage_heldout": float(np.mean([h[0] for h in held])) if held else None,
        "n_heldout": len(held),
        "mean_abs_heldout_error": float(np.mean([h[1] for h in held])) if held else None,
        "coverage_critical": float(np.mean([c[0] for c in crit])) if crit else None,
        "n_critical": len(crit),
        # how much the intervals say: the share with both ends inside SCOPE's search, and
        # their median width (decades of data size)
        "critical_bounded": float(np.mean([np.isfinite(c[1]) for c in crit])) if crit else None,
        "critical_median_decades": (
            float(np.median([c[1] for c in crit if np.isfinite(c[1])]))
            if any(np.isfinite(c[1]) for c in crit)
            else None
        ),
        "reliability_pbest": float(np.mean(sure)) if sure else None,
        "n_confident": len(sure),
        "fit_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--zero-shot", choices=("none", "shared", "unrelated"), default="none")
    args = ap.parse_args(argv)

    from ftscale.analysis.study import fit_points
    from ftscale.study.spec import FitSpec

    rng = np.random.default_rng(args.seed)
    new_spec = FitSpec(laws=("auto",), bootstrap=args.bootstrap)
    base_spec = FitSpec(laws=("multiplicative", "additive"), bootstrap=args.bootstrap)
    res = {"baseline": [], "new": []}
    secs = {"baseline": 0.0, "new": 0.0}
    studies = []
    for i in range(args.studies):
        study = draw_study(rng, args.zero_shot)
        pts = simulate_points(study, rng)
        studies.append({k: study[k] for k in ("row", "pet", "pre_power")})
        # baseline: today's fit (point bootstrap, no CV, the multiplicative law's answer)
        t = time.perf_counter()
        doc = fit_points(pts, "model_size", base_spec, f"sim{i}", calibrate=False)
        secs["baseline"] += time.perf_counter() - t
        # today's answer used the multiplicative fits
        res["baseline"].append(score(doc, study, "multiplicative", "critical_data_size_ci"))
        t = time.perf_counter()
        doc = fit_points(pts, "model_size", new_spec, f"sim{i}")
        secs["new"] += time.perf_counter() - t
        res["new"].append(score(doc, study, None, "critical_data_size_interval"))
        if not args.json:
            print(f"study {i}: {studies[-1]}", flush=True)
    out = {
        "studies": args.studies,
        "seed_sd": SEED_SD,
        "zero_shot": args.zero_shot,
        "baseline": summarize(res["baseline"], secs["baseline"]),
        "new": summarize(res["new"], secs["new"]),
    }
    out["time_ratio"] = secs["new"] / secs["baseline"] if secs["baseline"] else None
    for k in ("coverage_heldout", "coverage_critical", "reliability_pbest"):
        out[k] = out["new"][k]
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
