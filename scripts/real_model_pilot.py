"""The rate pilot behind examples/real_model.toml: each method's learning rate chosen on dev, once,
with the study's training settings, so that the study's runs can pin it instead of searching in
every run (a search is ~3x a run's training).

For each method: one run on ``--data-size`` examples (seed 0), with the study file's training
settings (``--study``, default examples/real_model.toml) but not its pinned rate: the rate is
searched on dev over the method's candidates for a model ftscale did not pretrain (``lr =
"auto"``: 5 rates around its ``pretrained_lr``, successive halving). FMT is the exception on a 24 GB machine: a search
holds every candidate's copy of the trainable parameters with its AdamW moments (~21 GiB for
Gemma-3-270M's 268M), so its candidates run one at a time, from the smallest rate up, until the
dev loss rises. Prints one JSON line per run: the rate(s), dev and test loss (nats/token), and
seconds by phase. ``python scripts/real_model_pilot.py --model gemma3-270m`` (about 45 min of run
time; docs/models.md, "The real-model study")."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ftscale.finetune.engine import as_config, run_finetune
from ftscale.finetune.rates import lr_candidates
from ftscale.study.spec import load_study

#: The study whose [training] settings the pilot runs with (its pinned rates aside).
STUDY = Path(__file__).resolve().parent.parent / "examples" / "real_model.toml"
KEEP = ("lr", "dev_loss", "loss", "zero_shot_loss", "best_step", "steps", "seconds_by_phase")


def _run(config: dict) -> dict:
    t = time.time()
    rec = run_finetune(config)
    return {"method": config["method"], "wall_s": round(time.time() - t, 1)} | {
        k: rec.get(k) for k in KEEP
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--study", default=str(STUDY), help="study file whose settings to use")
    p.add_argument("--model", default="gemma3-270m")
    p.add_argument("--task", default="translate-en-de")
    p.add_argument("--data-size", type=int, default=32)
    p.add_argument("--methods", nargs="+", default=["fmt", "lora", "prompt", "ia3"])
    args = p.parse_args()
    study = load_study(args.study)
    for method in args.methods:
        settings = {k: v for k, v in study.training_for(method).items() if k != "lr"}
        config = dict(settings, model=args.model, task=args.task, data_size=args.data_size)
        config.update(seed=0, method=method, lr="auto")
        if method != "fmt":
            print(json.dumps(_run(config) | {"candidates": lr_candidates(as_config(config))}))
            continue
        best = float("inf")
        for lr in lr_candidates(as_config(config)):
            row = _run({**config, "lr": lr})
            print(json.dumps(row), flush=True)
            if row["dev_loss"] > best:
                break  # the dev loss rose: larger rates only overfit faster
            best = row["dev_loss"]


if __name__ == "__main__":
    main()
