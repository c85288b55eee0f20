"""Compute-matched recommendations and FLOPs-axis critical sizes, on a simulated table whose
laws and cost models are known: the fitted answers must match the ones the true laws give."""

import csv
import json

import numpy as np
import pytest
import scipy.optimize

from ftscale.cli import main
from ftscale.laws.cost import data_size_at_cost, fit_cost_model, predict_cost

TRUTH = {
    "fmt": {"A": 1.2e5, "alpha": 0.52, "beta": 0.15, "E": 0.75},
    "lora": {"A": 3.9e3, "alpha": 0.40, "beta": 0.051, "E": 0.62},
}
TOKENS = 100  # tokens per example
#: FLOPs per parameter per token: full finetuning 6N; LoRA skips the weight gradients (~4N).
FLOPS_PER_TOKEN = {"fmt": 6.0, "lora": 4.0}
COST_NOISE = 0.05  # log-normal scatter of the measured FLOPs


def true_loss(m, x, d):
    p = TRUTH[m]
    return p["A"] * x ** -p["alpha"] * d ** -p["beta"] + p["E"]


def true_d(m, x, flops):
    return flops / (FLOPS_PER_TOKEN[m] * x * TOKENS)


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def fits(tmp_path, capsys):
    rng = np.random.default_rng(7)
    path = tmp_path / "runs.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["method", "model_size", "data_size", "seed", "loss", "flops"])
        for m in TRUTH:
            for n in (1e9, 2e9, 4e9, 8e9, 16e9):
                for d in (1e4, 3e4, 1e5, 3e5, 1e6):
                    loss = true_loss(m, n, d) + 0.002 * rng.normal()
                    flops = FLOPS_PER_TOKEN[m] * n * TOKENS * d * np.exp(COST_NOISE * rng.normal())
                    w.writerow([m, int(n), int(d), 0, f"{loss:.6f}", f"{flops:.6g}"])
    out = tmp_path / "fits.json"
    rc, _, err = call(
        capsys, "fit", path, "--law", "multiplicative", "--factor", "model_size",
        "--group-by", "method", "--bootstrap", "20", "--out", out, "--json",
    )  # fmt: skip
    assert rc == 0, err
    return out


def true_flops_crossing(x, lo, hi):
    def g(t):
        f = np.exp(t)
        return true_loss("fmt", x, true_d("fmt", x, f)) - true_loss("lora", x, true_d("lora", x, f))

    ts = np.linspace(np.log(lo), np.log(hi), 2001)
    v = g(ts)
    i = np.flatnonzero(v[:-1] * v[1:] < 0)
    return [float(np.exp(scipy.optimize.brentq(g, ts[j], ts[j + 1]))) for j in i]


def test_cost_model_records_its_error(fits):
    doc = json.loads(fits.read_text())
    for rec in doc["fits"]:
        cm = rec["cost_models"]["flops"]
        c0, c1, c2 = cm["coef"]
        m = rec["group"]["method"]
        assert c1 == pytest.approx(1.0, abs=0.05) and c2 == pytest.approx(1.0, abs=0.05)
        assert np.exp(c0) == pytest.approx(FLOPS_PER_TOKEN[m] * TOKENS, rel=0.5)
        # RMS of log residuals ~ the simulated scatter (a few fitted dofs shrink it a little)
        assert 0.5 * COST_NOISE < cm["rms_log_error"] < 1.5 * COST_NOISE


@pytest.mark.parametrize("budget", [2e16, 3e17])
def test_compute_matched_recommendation_matches_the_true_laws(capsys, fits, budget):
    x = 1e9
    rc, out, err = call(capsys, "recommend", fits, "--at", x, "--budget-flops", budget, "--json")
    assert rc == 0, err
    rec = json.loads(out)["recommendations"][0]
    assert rec["cost_column"] == "flops" and rec["budget"] == budget
    truth = {m: true_loss(m, x, true_d(m, x, budget)) for m in TRUTH}
    assert rec["best"] == min(truth, key=truth.get)
    assert 0.5 < rec["p_best"] <= 1
    for r in rec["ranking"]:
        m = r["method"]
        assert r["data_size_at_budget"] == pytest.approx(true_d(m, x, budget), rel=0.1)
        assert r["predicted_loss"] == pytest.approx(truth[m], abs=0.01)
        assert r["interval"][0] <= r["predicted_loss"] <= r["interval"][1]
        assert r["cost_model"]["column"] == "flops"
        assert r["cost_model"]["error"] == pytest.approx(COST_NOISE, rel=0.5)
        inside = 1e4 <= r["data_size_at_budget"] <= 1e6
        assert r["extrapolated"] is (not inside)
    rc, text, _ = call(capsys, "recommend", fits, "--at", x, "--budget-flops", budget)
    assert rc == 0 and "cost model (flops)" in text and "rms_log_error" in text


def test_flops_crossing_matches_the_true_laws(capsys, fits):
    x = 1e9
    rc, out, err = call(capsys, "critical", fits, "--at", x, "--axis", "flops", "--json")
    assert rc == 0, err
    (pair,) = json.loads(out)["pairs"]
    (pt,) = pair["points"]
    lo, hi = pt["range"]
    truth = true_flops_crossing(x, lo, hi)
    assert len(truth) == 1 and pt["critical_budget"] == pytest.approx(truth[0], rel=0.3)
    d1, d2 = pt["data_sizes"]
    i = pair["methods"].index("fmt")
    assert pt["data_sizes"][i] == pytest.approx(true_d("fmt", x, truth[0]), rel=0.3)
    assert d1 != d2  # each method at its own data size
    assert pt["extrapolated"] is False
    assert pt["critical_budget_ci"][0] <= pt["critical_budget"] <= pt["critical_budget_ci"][1]
    assert pt["p_crossing"] > 0.5
    assert [c["column"] for c in pair["cost_models"]] == ["flops", "flops"]
    # the data-axis crossing differs: lora gets 1.5x the data at one budget
    rc, out, _ = call(capsys, "critical", fits, "--at", x, "--json")
    d_cross = json.loads(out)["pairs"][0]["points"][0]["critical_data_size"]
    assert d_cross < true_d("fmt", x, truth[0])


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--at", "1e9", "--budget-flops", "1e17", "--data-size", "1e4"], "exclude each other"),
        (["--at", "1e9", "--budget-seconds", "10"], "no train_seconds cost model"),
        (["--at", "1e9", "--budget-flops", "0"], "finite numbers > 0"),
        (["--at", "1e9"], "give --data-size D"),
        (["--data-size", "1e4", "--pet-size"], "no fit is over pet_size"),
    ],
)
def test_budget_mistakes_are_user_errors(capsys, fits, args, msg):
    rc, out, err = call(capsys, "recommend", fits, *args)
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1 and out == ""


def test_critical_seconds_axis_without_seconds_is_a_user_error(capsys, fits):
    rc, _, err = call(capsys, "critical", fits, "--at", "1e9", "--axis", "seconds")
    assert rc == 2 and "no train_seconds cost model" in err


def test_data_size_at_cost_inverts_the_cost_model():
    rng = np.random.default_rng(0)
    x = np.repeat([1e8, 1e9, 1e10], 4)
    d = np.tile([1e3, 1e4, 1e5, 1e6], 3)
    cost = 3.0 * x**0.9 * d**1.1 * np.exp(0.01 * rng.normal(size=x.size))
    model = fit_cost_model(x, d, cost)
    assert model["coef"][1:] == pytest.approx([0.9, 1.1], abs=0.02)
    assert 0 < model["rms_log_error"] < 0.02
    for budget in (1e12, 1e15, 1e18):
        dd = data_size_at_cost(model, 2e9, budget)
        assert predict_cost(model, 2e9, dd) == pytest.approx(budget, rel=1e-9)
    flat = fit_cost_model(x, d, np.full(x.size, 7.0))  # e.g. trainable_params: no D dependence
    assert data_size_at_cost(flat, 2e9, 1e12) is None
