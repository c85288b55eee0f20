"""PET-size choice on a simulated table whose laws are known: the fitted choice must be the
one the true laws give (LoRA barely depends on its rank; prompt length matters)."""

import csv
import json

import numpy as np
import pytest

from ftscale.cli import main

SIZES = (4, 8, 16, 32, 64)
TRUTH = {
    "lora": {"A": 3.0, "alpha": 0.002, "beta": 0.1, "E": 1.0},  # |alpha_t| < 0.01
    "prompt": {"A": 3.0, "alpha": 0.2, "beta": 0.1, "E": 1.0},
}


def true_loss(m, r, d):
    p = TRUTH[m]
    return p["A"] * r ** -p["alpha"] * d ** -p["beta"] + p["E"]


def true_choice(m, d, tol):
    losses = {r: true_loss(m, r, d) for r in SIZES}
    best = min(losses, key=losses.get)
    return best, min(r for r in SIZES if losses[r] <= losses[best] + tol)


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def fits(tmp_path, capsys):
    rng = np.random.default_rng(11)
    path = tmp_path / "runs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "pet_size", "data_size", "seed", "loss"])
        for m in TRUTH:
            for r in SIZES:
                for d in (1e3, 3e3, 1e4, 3e4, 1e5):
                    loss = true_loss(m, r, d) + 0.001 * rng.normal()
                    w.writerow([m, r, int(d), 0, f"{loss:.6f}"])
    out = tmp_path / "fits.json"
    rc, _, err = call(
        capsys, "fit", path, "--law", "multiplicative", "--factor", "pet_size",
        "--group-by", "method", "--bootstrap", "20", "--out", out, "--json",
    )  # fmt: skip
    assert rc == 0, err
    return out


@pytest.mark.parametrize("tol", [0.01, 0.1])
def test_pet_size_choice_matches_the_true_laws(capsys, fits, tol):
    d = 1e4
    rc, out, err = call(capsys, "recommend", fits, "--data-size", d, "--tolerance", tol, "--json")
    assert rc == 0, err  # automatic: the fits are over pet_size and --at is not given
    doc = json.loads(out)
    assert doc["data_size"] == d and doc["tolerance"] == tol
    (ctx,) = doc["pet_size_choice"]
    assert set(ctx["methods"]) == set(TRUTH)
    for m, ch in ctx["methods"].items():
        best, smallest = true_choice(m, d, tol)
        assert ch["best"] == best
        assert ch["smallest_within_tolerance"] == smallest
        assert [c["pet_size"] for c in ch["candidates"]] == list(SIZES)
        assert ch["predicted_loss"] == pytest.approx(true_loss(m, smallest, d), abs=0.005)
        lo, hi = ch["interval"]
        assert lo <= ch["predicted_loss"] <= hi
        assert 0 <= ch["loss_gap"] <= tol
        assert ch["loss_gap_interval"][0] <= ch["loss_gap"] <= ch["loss_gap_interval"][1]
        assert ch["n_draws"] == 20 and 0 <= ch["p_within_tolerance"] <= 1
        assert all(c["extrapolated"] is False for c in ch["candidates"])
    # LoRA's rank barely matters: the smallest rank is within 0.01 nats/token of the best
    assert ctx["methods"]["lora"]["smallest_within_tolerance"] == min(SIZES)


def test_pet_size_flag_text_and_extrapolation(capsys, fits):
    rc, out, err = call(capsys, "recommend", fits, "--data-size", 1e6, "--pet-size", "--json")
    assert rc == 0, err
    ch = json.loads(out)["pet_size_choice"][0]["methods"]["prompt"]
    assert all(c["extrapolated"] is True for c in ch["candidates"])  # 1e6 is beyond the runs
    rc, text, _ = call(capsys, "recommend", fits, "--data-size", 1e4)
    assert rc == 0 and "smallest within 0.01 nats/token" in text
    # with --at, the ordinary ranking of methods at that PET size
    rc, out, _ = call(capsys, "recommend", fits, "--data-size", 1e4, "--at", 16, "--json")
    assert rc == 0 and "recommendations" in json.loads(out)


def test_pet_size_with_at_is_a_user_error(capsys, fits):
    rc, out, err = call(capsys, "recommend", fits, "--data-size", 1e4, "--pet-size", "--at", 8)
    assert rc == 2 and "leave out --at" in err and out == ""
