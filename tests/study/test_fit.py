import numpy as np
import pytest

from ftscale.analysis.study import fit_study
from ftscale.errors import UserError
from ftscale.laws.critical import crossings
from ftscale.laws.io import law_from_record
from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import SIM_LAWS, simulated_study

HASHES = {"sim-task": "fixture"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    import os

    os.environ["FTSCALE_RUN_FN"] = "ftscale.testing.simulated:simulated_run"
    try:
        d = simulated_study(models=("sim-1e5", "sim-3e5", "sim-1e6", "sim-3e6"), seeds=2)
        d["study"]["methods"] = ["fmt", "lora"]
        d["data_sizes"] = {
            "fmt": [100, 300, 1000, 3000, 10000],
            "lora": [100, 300, 1000, 3000, 10000],
        }
        d["fit"] = {"bootstrap": 20}
        study = parse_study(d)
        db = tmp_path_factory.mktemp("fit") / "s.db"
        run_study(study, db, workers=2, progress=False, data_hashes=HASHES)
        with RunStore(db) as store:
            return study, fit_study(study, store, HASHES)
    finally:
        del os.environ["FTSCALE_RUN_FN"]


def test_fits_recover_the_simulated_law(fitted):
    study, doc = fitted
    mult = {f["group"]["method"]: f for f in doc["fits"] if f["law"] == "multiplicative"}
    for method, (_a, alpha, beta, e) in SIM_LAWS.items():
        if method not in mult:
            continue
        p = mult[method]["params"]
        assert p["alpha"] == pytest.approx(alpha, abs=0.03)
        assert p["beta"] == pytest.approx(beta, abs=0.03)
        assert p["E"] == pytest.approx(e, abs=0.03)
        assert mult[method]["n_holdout"] > 0 and mult[method]["delta_h"] < 0.01


def test_points_are_seed_averaged_and_largest_held_out(fitted):
    study, doc = fitted
    pts = [p for p in doc["points"] if p["method"] == "fmt"]
    assert len(pts) == 4 * 5 and all(p["n_seeds"] == 2 for p in pts)
    held = [p for p in pts if p["heldout"]]
    assert {p["model_size"] for p in held} | {p["data_size"] for p in held} >= {3e6, 10000}
    assert all(p["model_size"] == 3e6 or p["data_size"] == 10000 for p in held)


def test_critical_sizes_agree_with_the_laws(fitted):
    _, doc = fitted
    [pair] = doc["critical"]
    fits = {f["group"]["method"]: f for f in doc["fits"] if f["law"] == "multiplicative"}
    l1, l2 = (law_from_record(fits[m]) for m in pair["methods"])
    for point in pair["points"]:
        assert point["crossings"] == pytest.approx(crossings(l1, l2, point["x"]))
        if point["critical_data_size"] is not None:
            d = point["critical_data_size"]
            assert abs(l1.predict(point["x"], d) - l2.predict(point["x"], d)) < 1e-6
    assert any(p["critical_data_size"] for p in pair["points"]), "the simulated methods cross"


def test_recommendation_ranks_methods(fitted):
    _, doc = fitted
    rec = doc["recommendations"][0]
    losses = [r["predicted_loss"] for r in rec["ranking"]]
    assert losses == sorted(losses) and rec["best"] == rec["ranking"][0]["method"]
    assert np.isfinite(losses).all()


def test_empty_store_is_a_user_error(tmp_path):
    study = parse_study(simulated_study())
    with RunStore(tmp_path / "s.db") as store, pytest.raises(UserError, match="no finished runs"):
        fit_study(study, store, HASHES)


def test_fits_carry_their_measured_ranges_and_law_health(fitted):
    _, doc = fitted
    for f in doc["fits"]:
        assert f["data_range"] == [100.0, 10000.0]
        assert f["health"]["extrapolates"] in (True, False)  # every fit has held-out points
        if f["factor"] is not None:
            assert f["factor_range"] == [1e5, 3e6]


def test_critical_points_say_whether_they_lie_inside_the_runs(fitted):
    _, doc = fitted
    [pair] = doc["critical"]
    flagged = []
    for p in pair["points"]:
        d = p["critical_data_size"]
        assert p["measured_range"] == [100.0, 10000.0]
        assert p["extrapolated"] is (None if d is None else not 100 <= d <= 10000)
        if p["extrapolated"]:
            flagged.append(p["x"])
    assert sorted(c["x"] for c in doc["health"]["critical"]) == sorted(flagged)
    for c in doc["health"]["critical"]:
        assert "extrapolated beyond the runs" in c["message"]
    assert set(doc["health"]) == {"curves", "laws", "critical", "flips"}
    assert doc["health"]["curves"] == []  # the simulated losses fall with data


def test_the_answer_is_at_the_largest_model_and_data_size(fitted):
    _, doc = fitted
    (ans,) = doc["answer"]["tasks"]
    assert ans["task"] == "sim-task" and ans["model_size"] == 3e6 and ans["data_size"] == 10000
    assert ans["model"] == "sim-3e6"
    assert ans["best"] == ans["ranking"][0]["method"]
    assert sum(r["p_best"] for r in ans["ranking"]) == pytest.approx(1.0)
    assert ans["p_best"] == ans["ranking"][0]["p_best"] and ans["n_draws"] == 20
    assert ans["text"].startswith("sim-task: at model size 3M (sim-3e6) with 10,000 examples, use")
    assert all(r["extrapolated"] is False for r in ans["ranking"])  # both methods ran 10,000
    assert not [f for f in ans["flags"] if f["kind"] == "data_size"]
