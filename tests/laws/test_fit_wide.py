"""``ftscale fit`` on a wide table (one row per model, integer column headers are data sizes,
``0`` the zero-shot loss), as published finetuning benchmarks are."""

import json

import numpy as np
import pandas as pd
import pytest

from ftscale.cli import main
from ftscale.errors import UserError
from ftscale.lawfit import fit_frame, wide_id_col, wide_to_long
from ftscale.laws.registry import get_law

SIZES = [200, 400, 800, 1600, 3200, 6400, 12800]
TRUE = {
    "gpt-s": {"B": 40.0, "D_l": 30.0, "beta": 0.5, "E": 2.0},
    "gpt-m": {"B": 30.0, "D_l": 20.0, "beta": 0.6, "E": 1.8},
    "opt-s": {"B": 60.0, "D_l": 60.0, "beta": 0.45, "E": 2.2},
}
FAMILY = {"gpt-s": "gpt", "gpt-m": "gpt", "opt-s": "opt"}


def wide_text(head="config name", drop=("opt-s", 1600)):
    """A wide CSV of exact rectified curves (zero-shot in ``0``) with one empty cell."""
    law = get_law("rectified")
    lines = [",".join([head, "size", "family", "0"] + [str(d) for d in SIZES])]
    for name, p in TRUE.items():
        losses = law.predict_with(p, None, np.array([0.0] + SIZES, float))
        cells = [f"{v:.6f}" for v in losses]
        if name == drop[0]:
            cells[1 + SIZES.index(drop[1])] = ""
        lines.append(",".join([name, "1e9", FAMILY[name]] + cells))
    return "\n".join(lines) + "\n"


def with_cell(text, line, col, value):
    """``text`` with the cell of file line ``line`` (1 = header) at column index ``col`` set."""
    lines = text.splitlines()
    cells = lines[line - 1].split(",")
    cells[col] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def write(tmp_path, text, name="wide.csv"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_wide_to_long_keeps_columns_skips_empty_cells_and_reads_zero_shot(tmp_path):
    from ftscale.tables import ROW, read_table

    df = read_table(write(tmp_path, wide_text()))
    assert wide_id_col(df.columns) == "config name"
    long = wide_to_long(df, id_col="config name", path="w.csv")
    opt = long[long["config name"] == "opt-s"]
    assert list(opt["data_size"]) == [0.0, 200, 400, 800, 3200, 6400, 12800]  # 1600 empty
    assert set(long.columns) >= {"config name", "size", "family", "data_size", "loss", ROW}
    assert list(opt[ROW].unique()) == [4]  # the model's line in the file
    assert len(long) == 3 * 8 - 1
    # a long table has no integer headers: nothing to melt
    assert wide_to_long(pd.DataFrame({"model": ["a"], "loss": [1.0]}), id_col="model") is None


def test_default_id_column():
    assert wide_id_col(["model", "config name", "0", "200"]) == "model"
    assert wide_id_col(["x", "config name", "200"]) == "config name"
    assert wide_id_col(["0", "name", "200", "family"]) == "name"


def test_fit_wide_one_fit_per_row_with_holdout_and_json(capsys, tmp_path):
    path = write(tmp_path, wide_text())
    args = ["fit", path, "--law", "rectified", "--holdout", "data_size > 3200", "--json"]
    rc, out, err = call(capsys, *args)
    assert rc == 0, err
    doc = json.loads(out)
    fits = {f["group"]["config name"]: f for f in doc["fits"]}
    assert sorted(fits) == sorted(TRUE)
    assert any("wide table: 3 rows" in n for n in doc["notes"])
    for name, f in fits.items():
        # the zero-shot point is fitted (the rectified law has D_l)
        assert f["n_fit"] == (5 if name == "opt-s" else 6) and f["n_holdout"] == 2
        held = f["heldout_points"]
        assert [p["data_size"] for p in held] == [6400, 12800]
        mae = np.mean([abs(p["observed"] - p["predicted"]) for p in held])
        assert f["delta_h"] == pytest.approx(mae)
        assert f["delta_h"] < 0.01  # exact rectified curves extrapolate
    truth = get_law("rectified").predict_with(TRUE["gpt-s"], None, np.array([12800.0]))[0]
    assert fits["gpt-s"]["heldout_points"][1]["observed"] == pytest.approx(truth, abs=1e-6)


def test_fit_wide_group_by_where_and_a_law_without_zero_shot(capsys, tmp_path):
    path = write(tmp_path, wide_text())
    rc, out, err = call(
        capsys, "fit", path, "--law", "power", "--group-by", "family",
        "--where", 'family == "gpt"', "--json",
    )  # fmt: skip
    assert rc == 0, err
    doc = json.loads(out)
    assert [f["group"] for f in doc["fits"]] == [{"family": "gpt"}]
    # the two models' losses are averaged per data size, as a long table's runs are; the 0
    # column is left out
    assert doc["fits"][0]["n_fit"] == len(SIZES)
    assert any("zero-shot losses) left out" in n for n in doc["notes"])


@pytest.mark.parametrize(
    "text, args, msg",
    [
        (lambda t: t + "gpt-s,1e9,gpt" + ",2.5" * 8 + "\n", [], "'gpt-s' appears twice"),
        (lambda t: with_cell(t, 4, 3, "abc"), [], "4: loss in column '0' must be a positive"),
        (lambda t: t, ["--id-col", "nope"], "missing id column 'nope'"),
        (lambda t: "model,data_size,loss\na,200,2.0\n", ["--id-col", "model"], "for wide tables"),
        (lambda t: t.replace("family", "loss"), [], "target column 'loss'"),
    ],
)
def test_fit_wide_bad_input_is_one_line_exit_2(capsys, tmp_path, text, args, msg):
    path = write(tmp_path, text(wide_text()))
    rc, out, err = call(capsys, "fit", path, "--law", "rectified", *args)
    assert rc == 2 and out == ""
    assert err.startswith("ftscale: error:") and err.count("\n") == 1
    assert msg in err


def test_bad_loss_cell_names_column_and_value(tmp_path):
    from ftscale.tables import read_table

    path = write(tmp_path, with_cell(wide_text(), 3, 4, "-0.5"))  # gpt-m at 200 examples
    with pytest.raises(UserError, match=r"column '200' must be a positive number, got -0.5"):
        fit_frame(read_table(path), law="rectified", path=path)
