#!/usr/bin/env python3
"""Model selection on simulated candidate pools: the rules of docs/laws.md's comparison table.

For each seed and noise level, :func:`ftscale.laws.selection.compare_rules` draws pools of 6
candidates (rectified curves with plateaus ending between 200 and 20,000 examples), observes
them every factor sqrt(2) from 100 examples to a budget of 3,200 with relative Gaussian noise,
and scores four rules at the target of 32,000 examples: largest model, best loss at the budget,
the plain rectified fit (lowest extrapolation wins) and select_model's confident-flip rule.
Everything is seeded; a row takes ~1.5 CPU-minutes (the plain fit is half of it).

    python benchmarks/bench_selection.py [--seeds 0,1] [--noise 0.001,0.002,0.005]
        [--pools 40] [--confidence 0.9] [--no-plain-fit] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ftscale.laws.selection import compare_rules  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--noise", default="0.001,0.002,0.005")
    ap.add_argument("--pools", type=int, default=40)
    ap.add_argument("--confidence", type=float, default=0.9)
    ap.add_argument("--no-plain-fit", action="store_true", help="skip the plain rectified fit")
    ap.add_argument("--json", action="store_true", help="one JSON object per row")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    laws = () if args.no_plain_fit else ("rectified",)
    rules = ["largest_model", "best_at_budget", *[f"fit_{law}" for law in laws], "select_model"]
    if not args.json:
        print("| pools (seed) | noise | budget-best != target-best | " + " | ".join(rules) + " |")
        print("|---" * (3 + len(rules)) + "|")
    for seed in (int(s) for s in args.seeds.split(",")):
        for noise in (float(n) for n in args.noise.split(",")):
            t0 = time.process_time()
            res = compare_rules(
                n_trials=args.pools, seed=seed, noise=noise, laws=laws, confidence=args.confidence
            )
            res["cpu_seconds"] = round(time.process_time() - t0, 1)
            if args.json:
                print(json.dumps(res), flush=True)
                continue
            cells = [
                f"{res['rules'][r]['accuracy']:.2f} / {res['rules'][r]['regret']:.4f}"
                for r in rules
            ]
            print(
                f"| {args.pools} ({seed}) | {noise:.1%} | "
                f"{res['pools_where_budget_best_is_not_target_best']:.1%} | "
                + " | ".join(cells)
                + f" |  <!-- flips {res['select_model_flips']}, right "
                f"{res['select_model_flips_right']}, {res['cpu_seconds']} CPU s -->",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
