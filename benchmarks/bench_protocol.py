"""Which finetuning protocol makes a study's curves monotone in data, at what cost.

Runs the same sweep (tasks x models x methods x data sizes x seeds) under several protocols, all
in this invocation, each into its own run store under ``--work`` (a rerun reuses every finished
run), and prints per protocol against the first one (the baseline):

- ``rising``: curves (task, method, model) whose seed-mean test loss rises with data by more
  than the seed spread (``ftscale.analysis.health.curve_health``, the check ``study fit`` and
  the report make: the worst rise of a larger size over a smaller one against the combined
  seed standard deviation of the two points);
- ``worst_rise``: the largest such rise (nats/token), with its curve and sizes;
- ``mean_loss``: mean test loss over every point (lower: better protocol);
- ``core_seconds``: summed wall seconds of the runs (1 thread each), and its ratio to the
  baseline's; ``flops``: summed training FLOPs (every candidate of a search included) and
  its ratio, the cost figure that does not depend on how busy the machine was;
- ``lr_chosen``: for protocols with a learning-rate search, how often each candidate factor
  (rate / method default) was chosen, per data size.

Protocols (``--protocols``, comma-separated): ``base`` (cosine, one rate per method: the
demo's), ``wsd`` (warmup-stable-decay, decay on plateau), ``auto`` (lr = "auto", successive
halving), ``auto-grid`` (lr = "auto", every candidate to its end), ``auto-wsd`` (both).

    python benchmarks/bench_protocol.py --tasks translate-en-zh --methods lora \\
        --sizes 12,40,125,400,1200 --protocols base,wsd,auto,auto-wsd [--json]

The settings of every protocol are the demo study's [training] section otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

PROTOCOLS: dict[str, dict[str, Any]] = {
    "base": {"schedule": "cosine"},
    "wsd": {"schedule": "wsd"},
    "auto": {"lr": "auto"},
    "auto-grid": {"lr": "auto", "lr_search": "grid"},
    "auto-wsd": {"lr": "auto", "schedule": "wsd"},
    "auto-grid-wsd": {"lr": "auto", "lr_search": "grid", "schedule": "wsd"},
}


def study_dict(
    name: str,
    tasks: list[str],
    models: list[str],
    methods: list[str],
    sizes: dict[str, list[int]],
    seeds: int,
    protocol: dict[str, Any],
) -> dict[str, Any]:
    """A study (as a parsed TOML document) with the demo's [training] and ``protocol`` on top."""
    import tomllib

    from ftscale.demo import demo_study_path

    demo = tomllib.loads(demo_study_path().read_text())
    training = {k: v for k, v in demo["training"].items() if not isinstance(v, dict)}
    by_method = {m: dict(demo["training"].get(m, {})) for m in methods}
    common = {k: v for k, v in protocol.items() if k != "lr"}
    training.update(common)
    for m in methods:
        if "lr" in protocol:
            by_method[m]["lr"] = protocol["lr"]
    training.update({m: by_method[m] for m in methods if by_method[m]})
    return {
        "study": {
            "name": name,
            "tasks": tasks,
            "factor": "model_size",
            "models": models,
            "methods": methods,
            "seeds": seeds,
        },
        "data_sizes": {m: sizes[m] for m in methods},
        "pet_sizes": {m: v for m, v in demo["pet_sizes"].items() if m in methods},
        "training": training,
        "fit": {"laws": ["multiplicative"], "bootstrap": 0},
    }


def summarize(df, defaults: dict[str, float]) -> dict[str, Any]:
    """Figures of one protocol's finished runs (see the module)."""
    from ftscale.analysis.health import curve_health
    from ftscale.study.results import points_frame

    pts = points_frame(df)
    rising = curve_health(pts.to_dict("records"), ["task", "method", "model"])
    chosen: dict[str, dict[str, int]] = {}
    for _, r in df.iterrows():
        if r.get("lr") is None or r["method"] not in defaults:
            continue
        f = f"{float(r['lr']) / defaults[r['method']]:.3g}"
        chosen.setdefault(str(int(r["data_size"])), {}).setdefault(f, 0)
        chosen[str(int(r["data_size"]))][f] += 1
    worst = max(rising, key=lambda c: c["rise"], default=None)
    return {
        "runs": int(len(df)),
        "rising": len(rising),
        "rising_curves": [
            f"{c['task']}/{c['method']}/{c.get('model', '?')}: {c['from_size']:g}->"
            f"{c['to_size']:g} +{c['rise']:.3f} (spread {c['spread']:.3f})"
            for c in rising
        ],
        "worst_rise": None if worst is None else worst["rise"],
        "mean_loss": float(pts["loss"].mean()),
        "core_seconds": float(df["train_seconds"].sum()),
        # training FLOPs of every step taken, the candidates' of a search included: the cost
        # measure that does not depend on how busy the machine was
        "flops": float(df["flops"].sum()),
        "lr_chosen": chosen,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="translate-en-zh")
    ap.add_argument("--models", default="ftlm-1,ftlm-2,ftlm-3,ftlm-4")
    ap.add_argument("--methods", default="fmt,lora,prompt")
    ap.add_argument("--sizes", default="12,40,125,400,1200", help="data sizes, every method")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--protocols", default="base,wsd,auto,auto-wsd")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="runs/bench_protocol", help="folder of the run stores")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from ftscale.finetune.methods import METHODS
    from ftscale.study.plan import plan_study
    from ftscale.study.results import results_frame
    from ftscale.study.runner import run_study
    from ftscale.study.spec import parse_study
    from ftscale.study.store import RunStore

    tasks = args.tasks.split(",")
    models = args.models.split(",")
    methods = args.methods.split(",")
    sizes = {m: [int(s) for s in args.sizes.split(",")] for m in methods}
    protocols = args.protocols.split(",")
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        ap.error(f"unknown protocol {unknown[0]!r} (known: {', '.join(PROTOCOLS)})")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    defaults = {m: METHODS[m].default_lr for m in methods}
    out: dict[str, Any] = {"tasks": tasks, "models": models, "methods": methods, "sizes": sizes}
    out["protocols"] = {}
    for name in protocols:
        doc = study_dict(
            f"protocol-{name}", tasks, models, methods, sizes, args.seeds, PROTOCOLS[name]
        )
        study = parse_study(doc)
        store = work / f"{name}.db"
        run_study(study, store, workers=args.workers, progress=not args.json, stream=sys.stderr)
        with RunStore(store) as st:
            df = results_frame(st, [r.run_key for r in plan_study(study)])
        out["protocols"][name] = {"training": PROTOCOLS[name], **summarize(df, defaults)}
    base = out["protocols"][protocols[0]]
    for p in out["protocols"].values():
        p["cost_vs_baseline"] = p["core_seconds"] / base["core_seconds"]
        p["flops_vs_baseline"] = p["flops"] / base["flops"]
        p["mean_loss_vs_baseline"] = p["mean_loss"] - base["mean_loss"]
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"tasks {tasks}, models {models}, methods {methods}, sizes {args.sizes}")
    print(
        f"{'protocol':14} {'runs':>5} {'rising':>6} {'worst':>7} {'mean loss':>10} "
        f"{'Δ vs base':>9} {'core s':>8} {'x base':>6}"
    )
    for name, p in out["protocols"].items():
        worst = "-" if p["worst_rise"] is None else f"{p['worst_rise']:.3f}"
        print(
            f"{name:14} {p['runs']:5d} {p['rising']:6d} {worst:>7} {p['mean_loss']:10.4f} "
            f"{p['mean_loss_vs_baseline']:+9.4f} {p['core_seconds']:8.0f} "
            f"{p['cost_vs_baseline']:6.2f} {p['flops_vs_baseline']:7.2f}"
        )
        for c in p["rising_curves"]:
            print(f"    rising: {c}")
        if p["lr_chosen"] and PROTOCOLS[name].get("lr"):
            print(f"    chosen rate / default by data size: {json.dumps(p['lr_chosen'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
