"""The law commands: bad inputs (one line, exit 2, nothing written) and JSON schemas."""

import json
import math

import pytest

from ftscale.cli import main


def call(capsys, *args):
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_HEAD = "method,model_size,data_size,loss\n"


def rows(n=8, bad=None):
    lines = []
    for i in range(n):
        lines.append(f"fmt,{(i % 4 + 1) * 1e9:.0f},{(i // 4 + 1) * 1000},{1.0 + 0.01 * i}")
    if bad:
        lines[3] = bad
    return GOOD_HEAD + "\n".join(lines) + "\n"


BAD_INPUTS = [
    (
        "missing column",
        "method,model_size,loss\nfmt,1e9,1.0\n",
        ["--law", "multiplicative", "--factor", "model_size"],
        "missing column 'data_size'",
    ),
    (
        "non-numeric size",
        rows(bad="fmt,big,1000,1.0"),
        ["--law", "multiplicative", "--factor", "model_size"],
        ":5: column 'model_size' is not numeric: 'big'",
    ),
    (
        "zero data size for a law without D_l",
        rows(bad="fmt,1e9,0,1.0"),
        ["--law", "multiplicative", "--factor", "model_size"],
        ":5: data_size 0 (a zero-shot point) needs a law with a pre-learned data size",
    ),
    (
        "negative data size",
        rows(bad="fmt,1e9,-3,1.0"),
        ["--law", "multiplicative_rectified", "--factor", "model_size"],
        ":5: size column 'data_size' must be non-negative",
    ),
    (
        "non-positive factor",
        rows(bad="fmt,0,100,1.0"),
        ["--law", "multiplicative", "--factor", "model_size"],
        ":5: size column 'model_size' must be positive",
    ),
    (
        "NaN loss",
        rows(bad="fmt,1e9,1000,nan"),
        ["--law", "multiplicative", "--factor", "model_size"],
        ":5: loss column 'loss' must be finite",
    ),
    (
        "inf loss",
        rows(bad="fmt,1e9,1000,inf"),
        ["--law", "multiplicative", "--factor", "model_size"],
        ":5: loss column 'loss' must be finite",
    ),
    (
        "fewer points than parameters",
        rows(n=3),
        ["--law", "multiplicative", "--factor", "model_size"],
        "3 points for the 4 parameters",
    ),
    (
        "empty group",
        rows(),
        ["--law", "power", "--where", 'method == "lora"'],
        "no rows satisfy --where",
    ),
    ("unknown law", rows(), ["--law", "cubic"], "unknown law 'cubic'"),
    (
        "holdout removes every point",
        rows(),
        ["--law", "power", "--holdout", "data_size > 0"],
        "removes every point",
    ),
    (
        "invalid where",
        rows(),
        ["--law", "power", "--where", "__import__('os')"],
        "invalid expression",
    ),
    (
        "unknown column in where",
        rows(),
        ["--law", "power", "--where", "nope > 1"],
        "unknown column 'nope'",
    ),
    ("two-factor law without factor", rows(), ["--law", "additive"], "needs --factor"),
]


@pytest.mark.parametrize("label,text,args,msg", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_fit_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, label, text, args, msg):
    table = write(tmp_path, "t.csv", text)
    out = tmp_path / "fits.json"
    rc, stdout, err = call(capsys, "fit", table, *args, "--out", out, "--json")
    assert rc == 2
    assert err.startswith("ftscale: error: ") and len(err.strip().splitlines()) == 1
    assert msg in err
    assert "Traceback" not in err
    assert stdout == ""
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no temp file left either


def test_bad_input_through_a_real_process(tmp_path, cli):
    table = write(tmp_path, "t.csv", rows(bad="fmt,1e9,1000,nan"))
    proc = cli("fit", table, "--law", "power")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_unreadable_inputs(tmp_path, capsys):
    rc, _, err = call(capsys, "fit", tmp_path / "none.csv", "--law", "power")
    assert rc == 2 and "no such file" in err
    rc, _, err = call(capsys, "fit", write(tmp_path, "t.xlsx", "x"), "--law", "power")
    assert rc == 2 and "unknown table format" in err
    rc, _, err = call(capsys, "critical", write(tmp_path, "f.json", "{nope"), "--at", "1e9")
    assert rc == 2 and "not a JSON fits file" in err


def fit_doc(capsys, sim_table, tmp_path, *extra):
    path, _ = sim_table
    out = tmp_path / "fits.json"
    rc, stdout, err = call(
        capsys,
        "fit",
        path,
        "--law",
        "multiplicative",
        "--factor",
        "model_size",
        "--group-by",
        "task,method",
        "--holdout",
        "model_size >= 16e9",
        "--bootstrap",
        "20",
        "--out",
        out,
        "--json",
        *extra,
    )
    assert rc == 0, err
    return json.loads(stdout), out


def test_fit_json_schema_and_recovery(capsys, sim_table, tmp_path):
    doc, out = fit_doc(capsys, sim_table, tmp_path)
    _, truth = sim_table
    assert set(doc) >= {"fits"}
    assert len(doc["fits"]) == 2
    for f in doc["fits"]:
        assert set(f) >= {
            "group",
            "law",
            "factor",
            "params",
            "n_fit",
            "n_holdout",
            "delta_e",
            "delta_h",
            "ci",
        }
        assert f["law"] == "multiplicative" and f["factor"] == "model_size"
        assert set(f["params"]) == {"A", "alpha", "beta", "E"}
        assert set(f["ci"]) == {"A", "alpha", "beta", "E"}
        assert all(len(v) == 2 and v[0] <= v[1] for v in f["ci"].values())
        assert f["n_fit"] == 20 and f["n_holdout"] == 5
        assert f["delta_h"] is not None and f["delta_h"] < 0.02
        assert f["converged"] is True
        t = truth[f["group"]["method"]]
        assert f["params"]["alpha"] == pytest.approx(t["alpha"], abs=0.05)
        assert "bootstrap_params" not in f  # only in the --out file
    saved = json.loads(out.read_text())
    assert len(saved["fits"][0]["bootstrap_params"]) == 20


def test_human_output_is_a_table(capsys, sim_table):
    path, _ = sim_table
    rc, stdout, _ = call(
        capsys,
        "fit",
        path,
        "--law",
        "power",
        "--group-by",
        "method",
        "--where",
        "model_size == 1e9",
    )
    assert rc == 0
    assert stdout.splitlines()[0].split()[:3] == ["group", "law", "params"]
    assert "method=fmt" in stdout and "method=prompt" in stdout


def test_critical_json_schema(capsys, sim_table, tmp_path):
    _, out = fit_doc(capsys, sim_table, tmp_path)
    rc, stdout, err = call(
        capsys, "critical", out, "--methods", "fmt,prompt", "--at", "1e9,4e9", "--json"
    )
    assert rc == 0, err
    doc = json.loads(stdout)
    (pair,) = doc["pairs"]
    assert pair["methods"] == ["fmt", "prompt"]
    assert [p["x"] for p in pair["points"]] == [1e9, 4e9]
    for p in pair["points"]:
        assert set(p) >= {
            "x",
            "critical_data_size",
            "crossings",
            "critical_data_size_ci",
            "p_crossing",
            "n_draws",
        }
        assert p["critical_data_size"] is None or p["critical_data_size"] == p["crossings"][0]
        # fit_doc fits with --bootstrap 20: 20 pairs of draws
        assert p["n_draws"] == 20 and 0.0 <= p["p_crossing"] <= 1.0
        if p["p_crossing"] > 0:
            lo, hi = p["critical_data_size_ci"]
            assert 0 < lo <= hi
        else:
            assert p["critical_data_size_ci"] is None
    assert set(pair["closed_form"]) == {"H", "log10_H", "gamma", "defined", "why"}
    cf = pair["closed_form"]
    assert cf["defined"] is True  # beta 0.15 vs 0.051: the bootstrap intervals separate
    assert cf["log10_H"] == pytest.approx(math.log10(cf["H"]))
    assert pair["closed_form"]["gamma"] == pytest.approx((0.40 - 0.52) / (0.15 - 0.051), abs=0.3)
    rc, stdout, _ = call(capsys, "critical", out, "--methods", "fmt,prompt", "--at", "1e9")
    assert rc == 0 and "95%_interval" in stdout.splitlines()[0]
    rc, _, err = call(capsys, "critical", out, "--methods", "fmt,lora", "--at", "1e9")
    assert rc == 2 and "method 'lora' not in the fits" in err


def test_critical_interval_is_null_without_bootstrap(capsys, sim_table, tmp_path):
    path, _ = sim_table
    out = tmp_path / "plain.json"
    args = ["--law", "multiplicative", "--factor", "model_size", "--group-by", "method"]
    rc, _, err = call(capsys, "fit", path, *args, "--out", out, "--json")
    assert rc == 0, err
    rc, stdout, err = call(capsys, "critical", out, "--at", "1e9", "--json")
    assert rc == 0, err
    (pt,) = json.loads(stdout)["pairs"][0]["points"]
    assert pt["critical_data_size_ci"] is None
    assert pt["p_crossing"] is None and pt["n_draws"] is None


def test_recommend_json_schema(capsys, sim_table, tmp_path):
    _, out = fit_doc(capsys, sim_table, tmp_path)
    rc, stdout, err = call(capsys, "recommend", out, "--at", "2e9", "--data-size", "3e4", "--json")
    assert rc == 0, err
    (rec,) = json.loads(stdout)["recommendations"]
    assert set(rec) >= {
        "context",
        "x",
        "data_size",
        "ranking",
        "best",
        "flips",
        "flip_data_size",
        "cheapest_within_tolerance",
        "cost_column",
        "tolerance",
    }
    assert [r["method"] for r in rec["ranking"]][0] == rec["best"]
    for r in rec["ranking"]:
        assert r["interval"][0] <= r["predicted_loss"] <= r["interval"][1]
    assert rec["cost_column"] == "train_seconds"
    assert rec["cheapest_within_tolerance"]["method"] in ("fmt", "prompt")
    rc, _, err = call(capsys, "recommend", out, "--data-size", "3e4")
    assert rc == 2 and "needs --at" in err
    # the text table gives each method's chance of being best and says when the asked data
    # size lies beyond the runs (far above the largest simulated size here)
    rc, stdout, _ = call(capsys, "recommend", out, "--at", "2e9", "--data-size", "1e9")
    header = stdout.splitlines()[1].split()
    assert rc == 0 and "p_best" in header and "beyond_runs" in header
    assert all(line.split()[-1] == "yes" for line in stdout.splitlines()[2:4])


def test_select_json_schema_wide_and_long(capsys, tmp_path):
    import numpy as np

    from ftscale.laws.selection import simulate_candidates

    pool = simulate_candidates(np.random.default_rng(4), 3)
    sizes = [100, 200, 400, 800, 1600, 3200, 6400]
    wide = "model,note," + ",".join(map(str, sizes)) + "\n"
    long = "model,data_size,loss\n"
    for c in pool:
        ls = c.loss(np.array(sizes, float))
        wide += f"{c.name},x," + ",".join(f"{v:.6f}" for v in ls) + "\n"
        long += "".join(f"{c.name},{d},{v:.6f}\n" for d, v in zip(sizes, ls, strict=True))
    for name, text in (("w.csv", wide), ("l.csv", long)):
        rc, stdout, err = call(
            capsys,
            "select",
            write(tmp_path, name, text),
            "--budget",
            "3200",
            "--target",
            "1e5",
            "--method",
            "confident-flip",
            "--json",
        )
        assert rc == 0, err
        doc = json.loads(stdout)
        assert set(doc) >= {
            "predictions",
            "best",
            "p_best",
            "budget_best",
            "flipped",
            "p_beats_budget_best",
            "noise",
            "noise_dof",
            "confidence",
        }
        assert [p["model"] for p in doc["predictions"]][0] == doc["best"]
        assert sorted(p["model"] for p in doc["predictions"]) == sorted(c.name for c in pool)
        assert doc["budget_best"] in {c.name for c in pool}
        for p in doc["predictions"]:
            assert set(p) >= {"model", "predicted_loss", "predicted_loss_ci", "p_best"}
            lo, hi = p["predicted_loss_ci"]
            assert lo <= p["predicted_loss"] <= hi
            assert 0.0 <= p["p_best"] <= 1.0
            assert p["n_points"] == 6  # 6400 > budget unused
        assert doc["p_best"] == doc["predictions"][0]["p_best"]
        assert doc["noise_dof"] == 3 * (6 - 4) and doc["confidence"] == 0.9
    rc, stdout, err = call(
        capsys, "select", tmp_path / "w.csv", "--budget", "3200", "--target", "1e5"
    )
    # (the default method's text output)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].split()[:4] == ["rank", "model", "predicted_loss", "95%_interval"]
    assert any(line.startswith("best: ") for line in lines)
    rc, _, err = call(
        capsys,
        "select",
        write(tmp_path, "w2.csv", wide),
        "--budget",
        "300",
        "--target",
        "1e5",
        "--method",
        "rectified",
    )
    assert rc == 2 and "needs at least 4" in err


@pytest.mark.parametrize(
    "cmd, args, msg",
    [
        ("critical", ["--at", "0"], "finite numbers > 0"),
        ("critical", ["--at", "nan"], "finite numbers > 0"),
        ("critical", ["--at", "1e9,inf"], "finite numbers > 0"),
        ("critical", ["--at", "1e9", "--range", "1e6,1"], "LO < HI"),
        ("critical", ["--at", "1e9", "--range", "0,1e6"], "finite numbers > 0"),
        ("recommend", ["--at", "1e9", "--data-size", "inf"], "finite numbers > 0"),
        ("recommend", ["--at", "1e9", "--data-size", "1e3,1e4"], "one data size"),
        ("recommend", ["--at", "-1", "--data-size", "1e3"], "finite numbers > 0"),
        ("recommend", ["--at", "1e9", "--data-size", "1e3", "--range", "1e6,1"], "LO < HI"),
    ],
)
def test_law_command_ranges_are_checked(capsys, sim_table, tmp_path, cmd, args, msg):
    # issue 17, defect 10: no numpy warnings, "no crossing" or a backwards flip for these
    path, _ = sim_table
    out = tmp_path / "plain.json"
    fit_args = ["--law", "multiplicative", "--factor", "model_size", "--group-by", "method"]
    rc, _, err = call(capsys, "fit", path, *fit_args, "--out", out)
    assert rc == 0, err
    rc, stdout, err = call(capsys, cmd, out, *args)
    assert rc == 2 and msg in err and stdout == ""
    assert err.startswith("ftscale: error:") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--seed", "-1", "--bootstrap", "2"], "--seed must be"),
        (["--seed", "123456789012345678901"], "--seed must be"),
        (["--bootstrap", "-3"], "--bootstrap must be"),
        (["--factor", "data_size"], "name the same column"),
        (["--target", "data_size"], "name the same column"),
    ],
)
def test_fit_flags_checked_before_fitting(capsys, sim_table, tmp_path, args, msg):
    # issue 17, defects 4 and 5
    path, _ = sim_table
    rc, out, err = call(capsys, "fit", path, "--law", "power", "--group-by", "method", *args)
    assert rc == 2 and msg in err and out == ""
    rc, _, err = call(capsys, "fit", path, "--law", "power", "--out", tmp_path)
    assert rc == 2 and "names a folder" in err


def test_fit_json_and_text_carry_curve_and_law_health(capsys, tmp_path):
    """A curve that rises from 400 to 1,200 examples (2 seeds, spread 0.014) is named with its
    sizes; a law whose held-out point lies 0.3 nats/token off is flagged as not extrapolating;
    a flat curve within its seed noise is not flagged."""
    lines = ["method,data_size,seed,loss"]
    for d, base in ((100, 2.0), (200, 1.9), (400, 1.8), (800, 1.75), (1200, 1.96)):
        lines += [f"bad,{d},0,{base:.3f}", f"bad,{d},1,{base + 0.01:.3f}"]
    for d in (100, 200, 400, 800, 1200, 3600):
        loss = 1.5 + 2.0 * d**-0.5 - (0.3 if d == 3600 else 0.0)
        lines += [f"off,{d},0,{loss:.4f}", f"off,{d},1,{loss + 0.002:.4f}"]
    for d, loss in ((100, 2.0), (400, 2.01), (1200, 2.0)):  # flat within its 0.05 scatter
        lines += [f"flat,{d},0,{loss - 0.05:.3f}", f"flat,{d},1,{loss + 0.05:.3f}"]
    table = write(tmp_path, "t.csv", "\n".join(lines) + "\n")
    args = ["fit", table, "--law", "power", "--group-by", "method", "--holdout", "data_size > 2000"]
    rc, stdout, err = call(capsys, *args, "--json")
    assert rc == 0, err
    doc = json.loads(stdout)
    (curve,) = doc["health"]["curves"]
    assert curve["group"] == {"method": "bad"}
    assert (curve["from_size"], curve["to_size"]) == (800, 1200)
    assert curve["rise"] == pytest.approx(0.21) and curve["n_seeds"] == [2, 2]
    (law,) = doc["health"]["laws"]
    assert law["group"] == {"method": "off"} and law["extrapolates"] is False
    fits = {f["group"]["method"]: f for f in doc["fits"]}
    assert fits["off"]["data_range"] == [100, 3600]
    assert fits["off"]["health"]["extrapolates"] is False
    assert fits["bad"]["health"]["extrapolates"] is None  # nothing held out in that group
    rc, stdout, _ = call(capsys, *args)
    assert rc == 0
    health = [ln for ln in stdout.splitlines() if ln.startswith("health: ")]
    assert len(health) == 2
    assert "loss rises from 800 to 1,200 examples" in health[0]
    assert "group method=off" in health[1] and "does not extrapolate" in health[1]


def test_fit_help_lists_every_registered_law(capsys, monkeypatch):
    from ftscale.laws.registry import LAWS

    monkeypatch.setitem(LAWS, "toy_help_law", LAWS["power"])  # a law added by one registry line
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert all(f"| {name}" in out for name in LAWS)
