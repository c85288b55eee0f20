"""The covariate laws: the model enters through its zero-shot loss (``zero_shot_rectified``,
``zero_shot_scaled``), measured per factor value and carried in the fit as a map."""

import json

import numpy as np
import pandas as pd
import pytest

from ftscale.analysis.covariates import applicable, covariate_map
from ftscale.cli import main
from ftscale.errors import UserError
from ftscale.laws.io import fit_record, law_from_record
from ftscale.laws.registry import get_law

SIZES = np.geomspace(1e6, 3e7, 5)
#: zero-shot losses that are not a power of the model size (a family's members are uneven)
ZS = [4.0, 3.4, 3.3, 2.7, 2.5]
TRUTH = {"A": 3.0, "alpha": 1.2, "beta": 0.4, "D_l": 30.0, "E": 1.0}
DATA = [10.0, 30.0, 100.0, 300.0, 1000.0]


def table(noise=0.003, seed=0, with_zero_shot=True):
    """Long rows (2 seeds) of the zero-shot-rectified truth at SIZES x DATA."""
    law = get_law("zero_shot_rectified")(
        covariate_map=tuple(zip(SIZES, ZS, strict=True))
    ).load_fitted(TRUTH)
    rng = np.random.default_rng(seed)
    rows = []
    for x, z in zip(SIZES, ZS, strict=True):
        for d in DATA:
            for s in range(2):
                loss = float(law.predict(x, d)) + noise * rng.normal()
                rows.append({"model_size": x, "data_size": d, "seed": s, "loss": loss})
                if with_zero_shot:
                    rows[-1]["zero_shot_loss"] = z
    return pd.DataFrame(rows)


def test_the_map_interpolates_in_log_log_and_extrapolates_from_the_end_pairs():
    law = get_law("zero_shot_scaled")(covariate_map=((1e6, 4.0), (1e7, 2.0)))
    x = np.log([1e6, 1e7, np.sqrt(1e13), 1e8, 1e5])
    out = np.exp(law.map_log_x(x))
    assert out[:2] == pytest.approx([4.0, 2.0])
    assert out[2] == pytest.approx(np.sqrt(8.0))  # halfway in log X: the geometric mean
    assert out[3] == pytest.approx(1.0) and out[4] == pytest.approx(8.0)  # Z ~ X^-0.301
    assert law.covariate_of(np.array([1e6, 1e7])) == pytest.approx([4.0, 2.0])
    with pytest.raises(UserError, match="zero_shot_loss measured at each factor value"):
        get_law("zero_shot_scaled")().map_log_x(x)


def test_the_map_comes_from_the_column_or_the_zero_shot_rows_and_says_why_not():
    cls = get_law("zero_shot_rectified")
    df = table(noise=0.0)
    pairs = covariate_map(cls, df, factor="model_size")
    assert [p[1] for p in pairs] == pytest.approx(ZS)
    # a wide table's zero-shot column: rows with data size 0 carry the loss before finetuning
    zero = pd.DataFrame({"model_size": SIZES, "data_size": 0.0, "loss": ZS})
    rows = pd.concat([table(with_zero_shot=False), zero], ignore_index=True)
    assert [p[1] for p in covariate_map(cls, rows, factor="model_size")] == pytest.approx(ZS)
    gap = df.copy()
    gap.loc[gap["model_size"] == SIZES[2], "zero_shot_loss"] = np.nan
    with pytest.raises(UserError, match=r"none at 5\.477"):
        covariate_map(cls, gap, factor="model_size")
    flat = df.assign(zero_shot_loss=3.0)
    with pytest.raises(UserError, match="two distinct"):
        covariate_map(cls, flat, factor="model_size")
    assert not applicable(cls, table(with_zero_shot=False), factor="model_size")
    assert applicable(get_law("multiplicative"), table(with_zero_shot=False), factor="model_size")
    assert covariate_map(get_law("multiplicative"), df, factor="model_size") is None


def test_the_zero_shot_law_extrapolates_to_a_held_out_model_where_the_size_law_cannot():
    """Uneven members (ZS is not a power of size): the zero-shot law predicts the largest
    model's curve from the other four; the multiplicative-rectified law of size does not."""
    df = table()
    pts = df.groupby(["model_size", "data_size"], as_index=False)[["loss", "zero_shot_loss"]].mean()
    held = pts["model_size"] == SIZES[-1]
    fit, hold = pts[~held], pts[held]
    errs = {}
    for name in ("zero_shot_rectified", "multiplicative_rectified"):
        cls = get_law(name)
        hyper = (
            {"covariate_map": covariate_map(cls, pts, factor="model_size")} if cls.covariate else {}
        )
        law = cls(**hyper).fit(
            fit["model_size"].to_numpy(),
            fit["data_size"].to_numpy(),
            fit["loss"].to_numpy(),
            holdout=(
                hold["model_size"].to_numpy(),
                hold["data_size"].to_numpy(),
                hold["loss"].to_numpy(),
            ),
        )
        errs[name] = law.delta_h_
    assert errs["zero_shot_rectified"] < 0.01 < errs["multiplicative_rectified"], errs


def test_a_fits_file_carries_the_map_and_rebuilds_the_same_law():
    cls = get_law("zero_shot_scaled")
    df = table()
    pairs = covariate_map(cls, df, factor="model_size")
    law = cls(covariate_map=pairs, n_bootstrap=5).fit(
        df["model_size"].to_numpy(), df["data_size"].to_numpy(), df["loss"].to_numpy()
    )
    rec = json.loads(
        json.dumps(fit_record(law, group={}, factor="model_size", data="data_size", target="loss"))
    )
    assert rec["covariate"]["column"] == "zero_shot_loss" and len(rec["covariate"]["map"]) == 5
    back = law_from_record(rec)
    X, D = np.array([2e6, 3e7, 6e7]), np.array([50.0, 2000.0, 100.0])
    np.testing.assert_allclose(back.predict(X, D), law.predict(X, D))
    np.testing.assert_allclose(back.draw_predictions(X, D), law.draw_predictions(X, D))
    for bad in (None, {"map": [[1e6, 4.0]]}, {"map": [[1e6, 4.0], [1e7, -1.0]]}, {"map": "x"}):
        with pytest.raises(UserError, match="covariate.map"):
            law_from_record({**rec, "covariate": bad})


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_fit_auto_adds_the_zero_shot_laws_only_where_the_table_measures_the_zero_shot_loss(
    tmp_path, capsys
):
    with_zs, without = tmp_path / "zs.csv", tmp_path / "no.csv"
    table().to_csv(with_zs, index=False)
    table(with_zero_shot=False).to_csv(without, index=False)
    args = ("--factor", "model_size", "--law", "auto", "--holdout", "model_size > 2e7", "--json")
    rc, out, _ = call(capsys, "fit", with_zs, *args)
    doc = json.loads(out)
    laws = {f["law"]: f for f in doc["fits"]}
    assert rc == 0 and {"zero_shot_rectified", "zero_shot_scaled"} <= set(laws)
    assert laws["zero_shot_rectified"]["delta_h"] < 0.01
    rc, out, _ = call(capsys, "fit", without, *args)
    doc = json.loads(out)
    assert rc == 0 and not any(f["law"].startswith("zero_shot") for f in doc["fits"])
    assert not any("zero_shot" in n for n in doc["notes"])  # auto leaves them out silently
    rc, out, err = call(
        capsys, "fit", without, "--factor", "model_size", "--law", "zero_shot_scaled"
    )
    assert rc == 2 and "needs the zero_shot_loss" in err and "Traceback" not in err


def test_a_model_at_or_below_the_fitted_floor_is_predicted_at_the_floor_not_nan():
    """A held-out model better than any fitted one can have Z <= E: no reducible loss is left,
    the prediction is E (a NaN there once made answers and intervals NaN)."""
    law = get_law("zero_shot_rectified")(covariate_map=((1e6, 4.0), (1e7, 3.0), (1e8, 2.0)))
    law.load_fitted({**TRUTH, "E": 3.5})
    pred = law.predict(np.array([1e6, 1e7, 1e8]), np.array([10.0, 10.0, 1000.0]))
    assert np.isfinite(pred).all() and pred[0] > 3.5
    assert pred[1:] == pytest.approx([3.5, 3.5])


def test_the_answer_names_a_covariate_law_by_its_covariate():
    from ftscale.analysis.prose import _of_covariate

    assert _of_covariate("zero_shot_scaled") == " (of each model's zero-shot loss)"
    assert _of_covariate("multiplicative") == "" and _of_covariate("no_such_law") == ""
