import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "paper_en_de_simulated.csv"


def run_cli(*args, cwd=None):
    """Run ``python -m ftscale ARGS``; returns the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "ftscale", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def sim_table(tmp_path):
    """A small long table with two methods following known multiplicative laws (seeded noise)."""
    import csv

    rng = np.random.default_rng(3)
    truth = {
        "fmt": {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75},
        "prompt": {"A": 3.9e3, "alpha": 0.40, "beta": 0.051, "E": 0.62},
    }
    path = tmp_path / "runs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["task", "method", "model_size", "data_size", "seed", "loss", "train_seconds"])
        for m, p in truth.items():
            for n in (1e9, 2e9, 4e9, 8e9, 16e9):
                for d in (1e4, 3e4, 1e5, 3e5, 1e6):
                    loss = (
                        p["A"] * n ** -p["alpha"] * d ** -p["beta"] + p["E"] + 0.002 * rng.normal()
                    )
                    secs = (3.0 if m == "fmt" else 2.0) * n * d / 1e12
                    w.writerow(["t", m, int(n), int(d), 0, f"{loss:.6f}", f"{secs:.4f}"])
    return path, truth
