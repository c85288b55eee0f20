"""Cost estimates of planned runs: from finished runs, from probes, and `study plan --probe`."""

from __future__ import annotations

import json

import pytest

from ftscale.study.estimate import estimate_runs, probe_estimate, probe_key
from tests.study.test_cli_study import TINY, ftscale


def _spec(model="m1", method="lora", data_size=100, **training):
    return {
        "task": "translate-en-de",
        "model": model,
        "method": method,
        "pet_size": 4 if method == "lora" else None,
        "data_size": data_size,
        "seed": 0,
        "training": training,
    }


PROBE = {
    "steps": 5,
    "seconds_by_phase": {
        "setup": 1.0,
        "zero_shot": 0.5,
        "train": 2.0,  # 0.4 s per step
        "dev_eval": 0.25,
        "test_eval": 0.5,
        "decode": 1.0,
        "transfer": 3.0,
    },
    "transfer": True,
}


def test_probe_estimate_is_the_full_budget_at_the_probed_rates():
    spec = _spec(steps=100, eval_every=20)
    # once: 1 + 0.5 + 0.5 + 1; train 100 x 0.4; 5 dev evaluations x 0.25
    assert probe_estimate(spec, PROBE) == pytest.approx(3.0 + 40.0 + 1.25)
    with_transfer = _spec(steps=100, eval_every=20, transfer=True)
    assert probe_estimate(with_transfer, PROBE) == pytest.approx(44.25 + 3.0)
    # an epoch budget: 3 epochs of 100 examples in batches of 10 = 30 steps, 2 evaluations
    epochs = _spec(epochs=3, batch_size=10, eval_every=20)
    assert probe_estimate(epochs, PROBE) == pytest.approx(3.0 + 12.0 + 0.5)


def test_probe_estimate_of_a_learning_rate_search_counts_every_candidate():
    # three candidates over 90 steps: halving trains all three to step 40 (a third, rounded up
    # to a dev evaluation), one on to 90 (170 steps, 9 evaluations at eval_every 20); grid
    # trains all three to the end (270 steps, 14 evaluations)
    halving = _spec(steps=90, eval_every=20, lr="auto")
    grid = _spec(steps=90, eval_every=20, lr=[1e-3, 3e-3, 1e-2], lr_search="grid")
    assert probe_estimate(halving, PROBE) == pytest.approx(3.0 + 170 * 0.4 + 9 * 0.25)
    assert probe_estimate(grid, PROBE) == pytest.approx(3.0 + 270 * 0.4 + 14 * 0.25)


def test_finished_runs_win_over_probes_and_unknowns_stay_none():
    a, b, c = _spec("m1"), _spec("m2", steps=10), _spec("m3")
    measured = [{"model": "m1", "method": "lora", "train_seconds": 7.0, "model_size": 1000}]
    probes = {probe_key(a): PROBE, probe_key(b): PROBE}
    est = estimate_runs([a, b, c], measured, probes)
    # m1: measured; m2: probe (10 steps, 1 evaluation at the default eval_every 20);
    # m3: no probe, but the same method was measured on m1 and m3's size is unknown
    assert est["per_run"][0] == 7.0
    assert est["per_run"][1] == pytest.approx(3.0 + 4.0 + 0.25)
    assert est["per_run"][2] is None
    assert "probe" in est["basis"] and "finished runs" in est["basis"]
    assert "without a comparable measurement" in est["basis"]


def test_plan_without_measurements_says_unknown(tmp_path):
    proc = ftscale("study", "plan", str(TINY), "--store", str(tmp_path / "s.db"))
    assert proc.returncode == 0, proc.stderr
    assert "estimated: unknown (run with --probe" in proc.stdout
    bad = ftscale("study", "plan", str(TINY), "--probe", "--probe-steps", "0")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_plan_probe_estimates_every_run(tmp_path):
    proc = ftscale(
        "study", "plan", str(TINY), "--store", str(tmp_path / "s.db"), "--probe",
        "--probe-steps", "2", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert all(r["est_seconds"] > 0 for r in plan["runs"])
    assert plan["estimate"]["runs_not_estimated"] == 0
    assert "4 probe runs" in plan["estimate"]["basis"]  # 2 models x 2 methods
    assert plan["estimate"]["startup_seconds_per_worker"] >= 0
    assert proc.stderr.count("probe ") == 4
    assert not (tmp_path / "s.db").exists()  # probes are not study runs: nothing is stored
