"""A simulated run function for testing the study machinery without training anything.

``FTSCALE_RUN_FN=ftscale.testing.simulated:simulated_run`` makes every run return a loss drawn from
a known multiplicative law instead of finetuning. Model names of the form ``sim-<size>`` (e.g.
``sim-1e6``) give the model size. A model name containing ``crash`` raises; one containing
``diverge`` returns a diverged record. ``FTSCALE_SIM_SLEEP`` (seconds) makes each run take that long,
and ``FTSCALE_SIM_LOG`` names a file to which every started run appends its key fields (so tests
can count how often a run really executed). ``FTSCALE_SIM_LAWS`` (JSON ``{method: [A, alpha,
beta, E]}``) replaces :data:`SIM_LAWS` for the methods it names and ``FTSCALE_SIM_NOISE`` sets the
half-width of the uniform seed noise (nats/token, default 0.002): the adaptive-design benchmark
draws a different known law per simulated study.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from typing import Any

#: The law the simulated losses follow (per method): A, alpha, beta, E.
#: As in the paper, FMT is the most data-hungry (largest beta), so PET wins at small data sizes
#: and FMT at large ones: the methods cross.
SIM_LAWS = {
    "fmt": (200.0, 0.30, 0.30, 1.60),
    "lora": (8.0, 0.20, 0.12, 1.62),
    "prompt": (6.0, 0.18, 0.08, 1.68),
}


#: Forgetting (forget_loss - forget_loss_before, nats/token) per method: c * data_size**g,
#: growing with the data (more finetuning, more drift) and largest for full tuning, then LoRA,
#: then prompt tuning (Biderman et al. 2024: LoRA forgets less). The base model's loss on
#: general text is ``FORGET_BASE`` * model_size**-0.05.
SIM_FORGET = {"fmt": (0.02, 0.3), "lora": (0.008, 0.3), "prompt": (0.003, 0.3)}
FORGET_BASE = 6.0


def _size(model: str) -> float:
    try:
        return float(model.split("-", 1)[1])
    except (IndexError, ValueError):
        return 1e6


def simulated_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a results record for ``spec`` from :data:`SIM_LAWS` with seeded noise."""
    log = os.environ.get("FTSCALE_SIM_LOG")
    if log:
        with open(log, "a") as fh:  # O_APPEND: one short write per line is atomic
            fh.write(f"{spec['method']} {spec['model']} {spec['data_size']} {spec['seed']}\n")
    sleep = float(os.environ.get("FTSCALE_SIM_SLEEP", "0"))
    if sleep:
        time.sleep(sleep)
    if "crash" in spec["model"]:
        raise RuntimeError(f"simulated crash in {spec['model']}")
    laws = dict(SIM_LAWS)
    if os.environ.get("FTSCALE_SIM_LAWS"):
        laws.update({k: tuple(v) for k, v in json.loads(os.environ["FTSCALE_SIM_LAWS"]).items()})
    half = float(os.environ.get("FTSCALE_SIM_NOISE", "0.002"))
    a, alpha, beta, e = laws.get(spec["method"], laws["lora"])
    n = _size(spec["model"])
    d = spec["data_size"]
    digest = hashlib.sha256(repr(sorted(spec.items())).encode()).digest()
    noise = (int.from_bytes(digest[:4], "little") / 2**32 - 0.5) * 2 * half
    loss = a * n**-alpha * d**-beta + e + noise
    c, g = SIM_FORGET.get(spec["method"], SIM_FORGET["lora"])
    forget_before = FORGET_BASE * n**-0.05
    forgetting = c * d**g + noise / 2
    status = "done"
    if "diverge" in spec["model"]:
        loss, status = math.nan, "diverged"
        forgetting = math.nan
    return {
        "task": spec["task"],
        "method": spec["method"],
        "model": spec["model"],
        "model_size": n,
        "pretrain_tokens": None,
        "pet_size": spec.get("pet_size"),
        "pet_params": 0 if spec["method"] == "fmt" else int(n * 0.01),
        "data_size": d,
        "seed": spec["seed"],
        "loss": loss,
        "dev_loss": loss + 0.01,
        "forget_loss_before": forget_before,
        "forget_loss": forget_before + forgetting,
        "forgetting": forgetting,
        "train_seconds": sleep,
        "status": status,
    }


def simulated_study(
    models: tuple[str, ...] = ("sim-1e5", "sim-1e6"), seeds: int = 2, name: str = "sim"
) -> dict[str, Any]:
    """A small study (as a parsed-TOML dict) over simulated models, for tests."""
    return {
        "study": {
            "name": name,
            "tasks": ["sim-task"],
            "factor": "model_size",
            "models": list(models),
            "methods": ["fmt", "lora"],
            "seeds": seeds,
        },
        "data_sizes": {"fmt": [100, 200, 400], "lora": [50, 100, 200]},
        "training": {"steps": 10},
    }
