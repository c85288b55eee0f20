"""``ftscale fit --target forgetting`` on a study's exported table (simulated runs)."""

import json
import os

import pandas as pd
import pytest

from ftscale.cli import main
from ftscale.study.results import results_frame
from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import SIM_FORGET, simulated_study


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    os.environ["FTSCALE_RUN_FN"] = "ftscale.testing.simulated:simulated_run"
    try:
        d = simulated_study(models=("sim-1e5", "sim-1e6"), seeds=2)
        d["study"]["methods"] = ["fmt", "lora", "prompt"]
        sizes = [100, 300, 1000, 3000, 10000]
        d["data_sizes"] = {"fmt": sizes, "lora": sizes, "prompt": sizes}
        tmp = tmp_path_factory.mktemp("forget")
        study = parse_study(d)
        run_study(study, tmp / "s.db", workers=1, progress=False, data_hashes={"sim-task": "x"})
        with RunStore(tmp / "s.db") as store:
            df = results_frame(store)
        path = tmp / "runs.csv"
        df.to_csv(path, index=False)
        return path
    finally:
        del os.environ["FTSCALE_RUN_FN"]


def _fit(path, capsys, *extra):
    rc = main(["fit", str(path), "--law", "power", "--group-by", "method,model", "--json", *extra])
    return rc, capsys.readouterr()


def test_the_exported_table_has_the_forgetting_columns(table):
    df = pd.read_csv(table)
    for c in ("forget_loss_before", "forget_loss", "forgetting"):
        assert df[c].notna().all(), c
    assert (df["forgetting"] - (df["forget_loss"] - df["forget_loss_before"])).abs().max() < 1e-9


def test_a_power_law_fits_forgetting_and_finds_it_growing_with_data(table, capsys):
    rc, out = _fit(table, capsys, "--target", "forgetting")
    assert rc == 0
    fits = {f["group"]["method"]: f for f in json.loads(out.out)["fits"]}
    assert set(fits) == {"fmt", "lora", "prompt"} and len(json.loads(out.out)["fits"]) == 6
    for m, f in fits.items():
        # simulated forgetting c * D^g: the law's beta is -g (forgetting grows with data)
        assert f["params"]["beta"] == pytest.approx(-SIM_FORGET[m][1], abs=0.05), m


def test_a_group_that_never_forgets_is_not_fitted(table, tmp_path, capsys):
    df = pd.read_csv(table)
    lora = df["method"] == "lora"
    df.loc[lora, "forgetting"] = -df.loc[lora, "forgetting"]  # LoRA got better at general text
    path = tmp_path / "neg.csv"
    df.to_csv(path, index=False)
    rc, out = _fit(path, capsys, "--target", "forgetting")
    doc = json.loads(out.out)
    assert rc == 0 and {f["group"]["method"] for f in doc["fits"]} == {"fmt", "prompt"}
    notes = [n for n in doc["notes"] if "method=lora" in n]
    assert len(notes) == 2
    for note in notes:
        assert "forgetting is <= 0" in note and "--target forget_loss" in note
    # forget_loss is always positive: it fits every group
    rc, out = _fit(path, capsys, "--target", "forget_loss")
    assert rc == 0 and len(json.loads(out.out)["fits"]) == 6
    # nothing left to fit: one line, exit 2
    df["forgetting"] = -df["forgetting"].abs()
    df.to_csv(path, index=False)
    rc, out = _fit(path, capsys, "--target", "forgetting")
    assert rc == 2 and "forgetting is <= 0" in out.err and len(out.err.strip().splitlines()) == 1


def test_only_a_rising_target_gets_the_mirrored_start_values():
    import numpy as np

    from ftscale.analysis.fit import rising_grid
    from ftscale.laws.power import PowerLaw
    from ftscale.laws.rectified import RectifiedLaw

    D = np.array([100.0, 1000.0, 10000.0])
    assert rising_grid(PowerLaw, D, 2.0 + 5 * D**-0.3) is None  # a loss: the default grid
    grid = rising_grid(PowerLaw, D, 0.01 * D**0.3)
    assert min(grid["beta"]) < 0 and set(PowerLaw.default_grid["beta"]) <= set(grid["beta"])
    assert rising_grid(RectifiedLaw, D, 0.01 * D**0.3) is None  # its box keeps beta >= 0


def test_forgetting_that_grows_with_data_is_no_health_flag(table, capsys):
    rc, out = _fit(table, capsys, "--target", "forgetting")
    assert rc == 0 and json.loads(out.out)["health"]["curves"] == []
    df = pd.read_csv(table)
    df["loss"] = df["forgetting"] + 1.0  # the same rising curves as a loss: flagged
    path = table.parent / "rising_loss.csv"
    df.to_csv(path, index=False)
    rc, out = _fit(path, capsys)
    assert rc == 0 and json.loads(out.out)["health"]["curves"]
