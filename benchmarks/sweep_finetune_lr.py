"""Learning-rate sweep behind the per-method defaults (docs/finetune.md records its output).

    python benchmarks/sweep_finetune_lr.py --models M1 M2 --task translate-en-de [--json]

For each model, method and learning rate: one run of ``run_finetune`` (same data subset, seed,
budget and early stopping as a study's run) and its dev loss at the best checkpoint. The default
learning rate of a method should sit at (or next to) the minimum for every model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

GRID = {
    "fmt": [3e-4, 1e-3, 3e-3, 1e-2],
    "lora": [1e-3, 3e-3, 1e-2, 3e-2],
    "prompt": [1e-2, 3e-2, 1e-1, 3e-1],
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--task", default="translate-en-de")
    p.add_argument("--methods", nargs="*", default=list(GRID))
    p.add_argument("--lrs", nargs="*", type=float, default=None, help="override the grid")
    p.add_argument("--data-size", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    from ftscale.finetune import run_finetune

    rows = []
    for model in args.models:
        for method in args.methods:
            for lr in args.lrs or GRID[method]:
                t = time.perf_counter()
                rec = run_finetune(
                    dict(
                        model=model,
                        task=args.task,
                        method=method,
                        data_size=args.data_size,
                        seed=args.seed,
                        steps=args.steps,
                        batch_size=args.batch_size,
                        lr=lr,
                        decode_examples=0,
                    )
                )
                row = {
                    "model": model,
                    "method": method,
                    "lr": lr,
                    "dev_loss": rec["dev_loss"],
                    "loss": rec["loss"],
                    "zero_shot_loss": rec["zero_shot_loss"],
                    "best_step": rec["best_step"],
                    "steps": rec["steps"],
                    "status": rec["status"],
                    "seconds": round(time.perf_counter() - t, 1),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    if args.json:
        meta = {"task": args.task, "data_size": args.data_size, "steps": args.steps}
        json.dump({**meta, "batch_size": args.batch_size, "rows": rows}, sys.stdout)
        sys.stdout.write("\n")
    else:
        for r in rows:
            loss = "diverged" if r["dev_loss"] is None else f"{r['dev_loss']:.4f}"
            print(f"{r['model']:>20} {r['method']:>6} lr={r['lr']:<7g} dev {loss} "
                  f"best@{r['best_step']}/{r['steps']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
