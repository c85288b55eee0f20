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
