"""The curve health flag "finetuning did not beat zero-shot" (issue 21)."""

from __future__ import annotations

import pytest

from ftscale.analysis.health import zero_shot_health


def _row(method, d, seed, loss, zero=3.0):
    return {"task": "t", "method": method, "data_size": d, "seed": seed, "loss": loss,
            "zero_shot_loss": zero}  # fmt: skip


def test_flags_sizes_whose_seed_mean_loss_is_not_below_the_base():
    rows = [
        _row("fmt", 16, 0, 3.5), _row("fmt", 16, 1, 3.1),  # mean gain -0.3: flagged
        _row("fmt", 64, 0, 2.5), _row("fmt", 64, 1, 3.2),  # mean gain +0.15: fine
        _row("fmt", 128, 0, 3.0),  # gain 0: no better than the base, flagged
        _row("lora", 16, 0, 2.9), _row("lora", 64, 0, 2.0),  # always better: no record
        {"task": "t", "method": "fmt", "data_size": 256, "loss": None, "zero_shot_loss": 3.0},
    ]  # fmt: skip
    out = zero_shot_health(rows, ["task", "method"])
    assert len(out) == 1
    rec = out[0]
    assert rec["method"] == "fmt" and rec["sizes"] == [16.0, 128.0]
    assert rec["gain"] == pytest.approx([-0.3, 0.0])
    assert "did not beat zero-shot" in rec["message"] and "16, 128" in rec["message"]


def test_nothing_to_flag_without_zero_shot_losses():
    rows = [{"task": "t", "method": "fmt", "data_size": 16, "loss": 9.0, "zero_shot_loss": None}]
    assert zero_shot_health(rows, ["task", "method"]) == []


def test_study_fit_flags_it_with_the_curves():
    import pandas as pd

    from ftscale.analysis.study import fit_points
    from ftscale.study.spec import FitSpec

    rows = []
    for method, worse in (("fmt", False), ("lora", True)):
        for m, size in (("a", 1e5), ("b", 1e6), ("c", 1e7)):
            for d in (10, 40, 160, 640):
                loss = 3.0 + 0.5 * (size / 1e5) ** -0.1 * (d / 10) ** -0.2
                rows.append(
                    {
                        "task": "t",
                        "method": method,
                        "model": m,
                        "pet_size": None,
                        "model_size": size,
                        "data_size": d,
                        "loss": loss + (0.6 if worse else 0.0),
                        "loss_std": 0.01,
                        "n_seeds": 2,
                        "zero_shot_loss": 3.6,
                    }  # fmt: skip
                )
    doc = fit_points(
        pd.DataFrame(rows), "model_size", FitSpec(laws=("multiplicative",), bootstrap=0)
    )
    flags = [c for c in doc["health"]["curves"] if c.get("kind") == "zero_shot"]
    assert {c["method"] for c in flags} == {"lora"} and len(flags) == 3
    assert all("did not beat zero-shot" in c["message"] for c in flags)
