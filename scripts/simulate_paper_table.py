#!/usr/bin/env python3
"""Write examples/paper_en_de_simulated.csv: a SIMULATED results table, not measurements.

Losses follow the multiplicative law L = A * X^-alpha * D^-beta + E with the paper's fitted En-De
values (Zhang et al. 2024, Table 4: FMT / Prompt / LoRA), at the paper's model sizes (1B..16B)
and finetuning data ranges (FMT 100K..4.5M examples, PET 8K..100K), three seeds per point with
Gaussian noise of 0.004 nats/token (the size of the paper's Delta). Cost columns are simulated
from rough rules (FLOPs = 6 N T for FMT, 4 N T for PET with T = 50 tokens per example; seconds at
4e14 FLOP/s; memory 16 bytes/parameter for FMT, 2 for PET). Seeded: the same file every run.

    python scripts/simulate_paper_table.py [--out examples/paper_en_de_simulated.csv] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ftscale.fsutil import atomic_write  # noqa: E402

#: Table 4, En-De row: method -> (A_m, alpha_m, E, beta).
PAPER_EN_DE = {
    "fmt": (1.2e5, 0.52, 0.75, 0.15),
    "prompt": (3.9e3, 0.40, 0.62, 0.051),
    "lora": (2.1e3, 0.36, 0.62, 0.081),
}
MODEL_SIZES = (1e9, 2e9, 4e9, 8e9, 16e9)
DATA_SIZES = {
    "fmt": (1e5, 2e5, 5e5, 1e6, 2e6, 4.5e6),
    "prompt": (8e3, 1.5e4, 2.5e4, 4e4, 6e4, 1e5),
    "lora": (8e3, 1.5e4, 2.5e4, 4e4, 6e4, 1e5),
}
NOISE = 0.004  # nats/token
TOKENS_PER_EXAMPLE = 50


def rows(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for method, (A, alpha, E, beta) in PAPER_EN_DE.items():
        for n in MODEL_SIZES:
            d_model = 2048 * (n / 1e9) ** (1 / 3)
            pet_size = {"fmt": None, "prompt": 100, "lora": 4}[method]
            pet_params = {
                "fmt": 0,
                "prompt": int(100 * d_model),
                "lora": int(n * 0.002),
            }[method]
            for d in DATA_SIZES[method]:
                for s in range(3):
                    loss = A * n**-alpha * d**-beta + E + NOISE * rng.normal()
                    tokens = d * TOKENS_PER_EXAMPLE
                    flops = (6 if method == "fmt" else 4) * n * tokens
                    out.append(
                        {
                            "task": "en-de-simulated",
                            "method": method,
                            "model": f"sim-{int(n / 1e9)}B",
                            "model_size": int(n),
                            "pretrain_tokens": int(283e9),
                            "pet_size": pet_size,
                            "pet_params": pet_params,
                            "data_size": int(d),
                            "seed": s,
                            "loss": round(float(loss), 6),
                            "dev_loss": round(float(loss + NOISE * rng.normal()), 6),
                            "train_seconds": round(flops / 4e14, 3),
                            "flops": flops,
                            "peak_mem_bytes": int(
                                (16 if method == "fmt" else 2) * n + 4 * pet_params
                            ),
                            "trainable_params": int(n) if method == "fmt" else pet_params,
                        }
                    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    root = Path(__file__).resolve().parents[1]
    p.add_argument("--out", default=str(root / "examples" / "paper_en_de_simulated.csv"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    data = rows(args.seed)
    with atomic_write(args.out, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(data[0]))
        w.writeheader()
        for r in data:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    print(f"wrote {len(data)} SIMULATED rows to {os.path.relpath(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
