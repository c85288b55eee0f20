"""The report, built from a small simulated store: every figure and table is there, and the
tables' numbers are the law engine's."""

import os
import re

import numpy as np
import pytest

from ftscale.analysis.study import fit_study
from ftscale.errors import UserError
from ftscale.laws.critical import closed_form
from ftscale.report.build import build_report
from ftscale.report.figures import method_label
from ftscale.report.summary import delta_table, findings, fit_cautions, params_table
from ftscale.study.runner import run_study
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_study

HASHES = {"sim-task": "fixture"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    os.environ["FTSCALE_RUN_FN"] = "ftscale.testing.simulated:simulated_run"
    try:
        d = simulated_study(models=("sim-1e5", "sim-1e6", "sim-1e7"), seeds=2)
        d["study"]["methods"] = ["fmt", "lora", "prompt"]
        d["data_sizes"] = {
            "fmt": [300, 1000, 3000, 10000],
            "lora": [100, 300, 1000, 3000],
            "prompt": [100, 300, 1000, 3000],
        }
        d["fit"] = {"bootstrap": 10}
        study = parse_study(d)
        tmp = tmp_path_factory.mktemp("report")
        run_study(study, tmp / "s.db", workers=2, progress=False, data_hashes=HASHES)
        with RunStore(tmp / "s.db") as store:
            doc = fit_study(study, store, HASHES)
            out = build_report(study, store, tmp / "report", doc=doc, data_hashes=HASHES)
        return study, doc, out
    finally:
        del os.environ["FTSCALE_RUN_FN"]


def test_report_files(built):
    _, _, out = built
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.html", "fits.json", "results.csv"} <= names
    assert "scaling_sim-task_model_size.png" in names
    assert "critical_sim-task_model_size.png" in names
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(list(out.glob("*.png")))
    assert 'src="scaling' not in page, "images are embedded, not linked"


def test_tables_hold_the_law_engine_numbers(built):
    _, doc, out = built
    md = (out / "report.md").read_text()
    for row in params_table(doc):
        prefix = f"| {method_label(row['method'])} | {row['law']} |"  # one task: no task column
        params = md.split("## Fitted parameters", 1)[1].split("\n## ", 1)[0]
        [line] = [ln for ln in params.splitlines() if ln.startswith(prefix)]
        assert f"| {row['alpha']:.3g} [" in line
    for row in delta_table(doc):
        assert f"{row['multiplicative_delta_h']:.4g}" in md
        assert f"{row['additive_delta_h']:.4g}" in md
    mult = {f["group"]["method"]: f for f in doc["fits"] if f["law"] == "multiplicative"}
    fmt, lora = mult["fmt"], mult["lora"]
    cf = closed_form(fmt["params"], lora["params"], fmt["ci"], lora["ci"])
    assert cf["defined"], "FMT's beta 0.3 and LoRA's 0.12 separate"
    assert f"{cf['gamma']:.4g}" in md and f"{cf['H']:.4g}" in md


def test_findings_follow_the_numbers(built):
    _, doc, _ = built
    text = " ".join(findings(doc))
    betas = {
        f["group"]["method"]: f["params"]["beta"]
        for f in doc["fits"]
        if f["law"] == "multiplicative"
    }
    hungry = max(betas, key=betas.get)
    assert hungry == "fmt"  # 0.30 against 0.12 and 0.08: the intervals separate
    assert re.search(
        rf"{dict(fmt='FMT', lora='LoRA', prompt='Prompt')[hungry]} is the most data-hungry", text
    )


def test_the_report_opens_with_the_answer_and_says_each_flag_once(built):
    from ftscale.report.build import FLAG_ACTIONS

    _, doc, out = built
    md = (out / "report.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "# Study report: sim" and lines[2] == "## Answer (model size scaled)"
    (ans,) = doc["answer"]["tasks"]
    best = next(r for r in ans["ranking"] if r["method"] == ans["best"])
    lo, hi = best["interval"]
    assert lines[4] == (
        f"**sim-task: use FMT** on sim-1e7 with 10,000 examples: predicted test loss "
        f"{best['predicted_loss']:.3f} [{lo:.3f}, {hi:.3f}] nats/token (95% interval), "
        f"P(best) {ans['p_best']:.2f} over {ans['n_draws']} draws."
    )
    # what it rests on (3 models x 3 methods x 4 sizes x 2 seeds), then its figure
    rests = next(ln for ln in lines[5:12] if ln.startswith("**Rests on:**"))
    assert "72 finished runs of 72 planned (36 points" in rests and "multiplicative law" in rests
    assert lines.index("![answer_sim-task](answer_sim-task.png)") < lines.index("## Findings")
    assert lines.index("### What to run next") < lines.index("### What to do about the flags")
    # LoRA and prompt tuning ran up to 3,000 examples: their losses at 10,000 are extrapolated,
    # said once, in the table of what lies beyond the runs
    flags = md.split("### What to do about the flags", 1)[1].split("## Findings", 1)[0]
    assert FLAG_ACTIONS["extrapolated"] in flags
    assert "| LoRA's loss in the answer | 10M: 10,000 | 100-3000 |" in flags
    assert "| Prompt's loss in the answer | 10M: 10,000 | 100-3000 |" in flags
    # no sentence of more than 40 characters twice, anywhere
    text = re.sub(r"(?m)^\|.*$", "", md)
    sents = [x.strip(" -*") for x in re.split(r"(?<=[.;:!?])\s+|\n", text)]
    long = [x for x in sents if len(x) > 40]
    assert len(long) == len(set(long)), [x for x in set(long) if long.count(x) > 1]
    # the page: the same sections, the details folded
    page = (out / "report.html").read_text()
    assert '<section id="answer">' in page and page.count("<details>") >= 5
    assert page.count("data:image/png;base64,") == len(list(out.glob("*.png")))


def test_too_few_points_still_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_RUN_FN", "ftscale.testing.simulated:simulated_run")
    d = simulated_study(models=("sim-1e5", "sim-1e6"), seeds=1)
    d["data_sizes"] = {"fmt": [100, 200], "lora": [100, 200]}
    study = parse_study(d)
    run_study(study, tmp_path / "s.db", workers=1, progress=False, data_hashes=HASHES)
    with RunStore(tmp_path / "s.db") as store:
        out = build_report(study, store, tmp_path / "r", data_hashes=HASHES)
    md = (out / "report.md").read_text()
    assert "not fitted" in md


def test_empty_study_is_a_user_error(tmp_path):
    study = parse_study(simulated_study())
    with RunStore(tmp_path / "s.db") as store, pytest.raises(UserError):
        build_report(study, store, tmp_path / "r", data_hashes=HASHES)
    assert not (tmp_path / "r").exists()


def test_a_fit_at_the_search_bound_is_flagged_not_interpreted():
    fit = {
        "group": {"task": "t", "method": "lora"},
        "law": "multiplicative",
        "factor": "model_size",
        "params": {"A": 5e21, "alpha": 4.1, "beta": 0.2, "E": 5.5},
        "at_bound": ["A"],
        "converged": True,
        "delta_h": 0.01,
    }
    doc = {"factor": "model_size", "fits": [fit], "points": [], "recommendations": []}
    text = " ".join(findings(doc))
    assert "edge of its search range (A)" in text
    assert "scaling model size lowers the loss faster" not in text


def test_a_floor_fitted_to_zero_is_flagged():
    """The demo's FMT fit: E ~ 1.5e-9 against losses of ~3.6-4.9 nats/token."""

    def fit(method, e):
        return {
            "group": {"task": "t", "method": method},
            "law": "multiplicative",
            "factor": "model_size",
            "params": {"A": 14.9, "alpha": 0.079, "beta": 0.042, "E": e},
            "at_bound": [],
            "converged": True,
            "delta_h": 0.01,
        }

    points = [
        {"task": "t", "method": m, "loss": loss, "model_size": 1e5, "data_size": d}
        for m in ("fmt", "lora")
        for d, loss in ((25, 4.9), (800, 3.6))
    ]
    doc = {
        "factor": "model_size",
        "fits": [fit("fmt", 1.5e-9), fit("lora", 3.25)],
        "points": points,
        "recommendations": [],
    }
    assert not [s for s in findings(doc) if "fitted floor E is ~0" in s]  # a flag, not a finding
    text = fit_cautions(doc)
    flagged = [s for s in text if "fitted floor E is ~0" in s]
    assert len(flagged) == 1 and flagged[0].startswith("t, FMT")


def _fit_rec(method, beta, ci_beta, alpha=0.2, ci_alpha=None):
    return {
        "group": {"task": "t", "method": method},
        "law": "multiplicative",
        "factor": "model_size",
        "params": {"A": 10.0, "alpha": alpha, "beta": beta, "E": 1.0},
        "ci": {} if ci_beta is None else {"beta": ci_beta, "alpha": ci_alpha or [alpha, alpha]},
        "at_bound": [],
        "converged": True,
        "delta_h": 0.01,
    }


def _doc(fits):
    return {"factor": "model_size", "fits": fits, "points": [], "recommendations": []}


def test_data_hunger_is_stated_only_where_the_beta_intervals_separate():
    overlapping = [
        _fit_rec("fmt", 0.042, [0.030, 0.055]),
        _fit_rec("lora", 0.055, [0.041, 0.070]),
        _fit_rec("prompt", 0.051, [0.040, 0.062]),
    ]
    text = " ".join(findings(_doc(overlapping)))
    assert "most data-hungry" not in text
    assert (
        "t: the methods' data exponents beta (FMT 0.042 [0.030, 0.055], LoRA 0.055 "
        "[0.041, 0.070], Prompt 0.051 [0.040, 0.062]) are not distinguishable in these runs"
    ) in text
    apart = [_fit_rec("fmt", 0.30, [0.28, 0.32]), _fit_rec("lora", 0.12, [0.10, 0.14])]
    text = " ".join(findings(_doc(apart)))
    assert "t: FMT is the most data-hungry method" in text
    assert "not distinguishable" not in text
    plain = [_fit_rec("fmt", 0.30, None), _fit_rec("lora", 0.12, None)]
    text = " ".join(findings(_doc(plain)))
    assert "most data-hungry" not in text and "the comparison has no intervals" in text


def test_alpha_against_beta_is_stated_only_where_their_intervals_separate():
    close = _fit_rec("fmt", 0.30, [0.25, 0.35], alpha=0.32, ci_alpha=[0.28, 0.36])
    text = " ".join(findings(_doc([close])))
    assert "lowers the loss faster" not in text
    assert (
        "t, FMT: alpha 0.320 [0.280, 0.360] (model size), beta 0.300 [0.250, 0.350] (data) are not distinguishable"
        in text
    )
    far = _fit_rec("fmt", 0.10, [0.08, 0.12], alpha=0.32, ci_alpha=[0.28, 0.36])
    assert "t, FMT: scaling model size lowers the loss faster" in " ".join(findings(_doc([far])))


def test_an_undefined_closed_form_reads_undefined_not_a_power_of_ten():
    from ftscale.report.build import render_markdown, report_sections, report_title

    doc = {
        "study": "s",
        "factor": "model_size",
        "fits": [],
        "points": [],
        "recommendations": [],
        "critical": [
            {
                "task": "t",
                "methods": ["fmt", "prompt"],
                "points": [
                    {"x": 1e6, "critical_data_size": 3.2, "extrapolated": True},
                ],
                "closed_form": {
                    "H": None,
                    "log10_H": None,
                    "gamma": None,
                    "defined": False,
                    "why": "betas equal within their 95% intervals",
                },
            }
        ],
    }
    md = render_markdown(report_sections(doc, [], None, []), report_title(doc))
    [row] = [ln for ln in md.splitlines() if ln.startswith("| FMT vs Prompt")]
    assert "| undefined |" in row and "10^" not in md
    assert "1e+06: 3.2* |" in row
    assert "H undefined: the two methods' betas are equal within their 95% bootstrap" in md
    assert "extrapolated beyond the runs" in md


def test_forgetting_figure_table_and_finding(built):
    from ftscale.report.forgetting import forgetting_points
    from ftscale.study.results import results_frame

    study, _, out = built
    assert "forgetting_sim-task.png" in {p.name for p in out.iterdir()}
    md = (out / "report.md").read_text()
    section = md.split("## Forgetting", 1)[1]
    with RunStore(out.parent / "s.db") as store:
        pts = forgetting_points(results_frame(store))
    # the table: one row per (method, model), one column per data size, each cell the seed
    # mean of the runs' column and its spread
    table = [r for r in section.splitlines() if r.startswith("| ")]
    sizes = sorted({p["data_size"] for p in pts})
    assert table[0] == "| method | model | " + " | ".join(f"{d:g}" for d in sizes) + " |"
    assert len(pts) == 3 * 3 * 4 and len(table) - 1 == 3 * 3
    p = next(
        p
        for p in pts
        if p["method"] == "fmt" and p["model"] == "sim-1e7" and p["data_size"] == 3000
    )
    [row] = [r for r in table if r.startswith("| FMT | sim-1e7 |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2 + sizes.index(3000)] == f"{p['forgetting']:+.3f}±{p['forgetting_std']:.3f}"
    # the finding: simulated forgetting is largest for fmt at every data size, so where fmt
    # and LoRA share a loss level LoRA forgets less (least first)
    lines = [s for s in md.splitlines() if s.startswith("- Forgetting (sim-task, sim-1e7;")]
    assert len(lines) == 1
    assert re.search(r"LoRA \+[0-9.]+ < FMT", lines[0]) and not re.search(
        r"FMT \+[0-9.]+ < LoRA", lines[0]
    )


def _curve(loss, forget):
    return (np.array(loss, float), np.array(forget, float), np.arange(len(loss), dtype=float))


def test_equal_loss_comparison_interpolates_in_the_common_range():
    from ftscale.report.forgetting import equal_loss_comparison

    cmp = equal_loss_comparison(
        {"fmt": _curve([1, 2, 3], [0.3, 0.2, 0.1]), "lora": _curve([2, 4], [0.0, 0.1])}
    )
    assert cmp["overlap"] == (2.0, 3.0) and cmp["level"] == 2.5
    assert cmp["forgetting"] == pytest.approx({"fmt": 0.15, "lora": 0.025})
    assert cmp["least"] == "lora"
    apart = equal_loss_comparison({"fmt": _curve([1, 2], [0, 0]), "lora": _curve([3, 4], [0, 0])})
    assert apart["overlap"] is None
    assert equal_loss_comparison({"fmt": _curve([1, 2], [0, 0])}) is None


def test_forgetting_finding_falls_back_to_overlapping_pairs():
    from ftscale.report.forgetting import forgetting_findings

    def pts(method, losses, forgets):
        return [
            {"task": "t", "model": "m", "method": method, "data_size": 10 * (i + 1), "loss": x,
             "forgetting": y}
            for i, (x, y) in enumerate(zip(losses, forgets, strict=True))
        ]  # fmt: skip

    points = pts("fmt", [1, 2], [0.4, 0.2]) + pts("lora", [1.5, 3], [0.1, 0.0])
    points += pts("prompt", [2.5, 4], [0.05, 0.01])
    (text,) = forgetting_findings(points)
    assert "no level common to all" in text
    # fmt vs LoRA at 1.75: fmt 0.25, LoRA 0.0833; LoRA vs prompt at 2.75: LoRA 1/60, prompt 0.0433
    assert "at test loss 1.750: LoRA +0.083 < FMT +0.250" in text
    assert "at test loss 2.750: LoRA +0.017 < Prompt +0.043" in text
    assert text.count("at test loss") == 2  # fmt and prompt do not overlap: not compared


def test_compute_matched_and_pet_size_sections(built):
    from ftscale.report.build import render_markdown, report_sections, report_title

    _, doc, _ = built
    doc = {
        **doc,
        "critical_flops": [
            {
                "task": "sim-task",
                "methods": ["fmt", "lora"],
                "cost_column": "flops",
                "cost_models": [{"error": 0.031}, {"error": None}],
                "points": [
                    {"x": 1e6, "critical_budget": 2.5e15, "extrapolated": True},
                    {"x": 1e7, "critical_budget": None, "extrapolated": None},
                ],
            }
        ],
        "pet_size_choice": [
            {
                "task": "sim-task",
                "data_size": 3000.0,
                "tolerance": 0.01,
                "methods": {
                    "lora": {
                        "best": 16,
                        "smallest_within_tolerance": 4,
                        "predicted_loss": 3.21,
                        "interval": [3.1, 3.3],
                    }
                },
            }
        ],
    }
    md = render_markdown(report_sections(doc, [], None, []), report_title(doc))
    assert "## Compute-matched choice (critical training FLOPs)" in md
    # one row per pair, one column per factor value
    assert "| methods | 1e+06 | 1e+07 | cost-model error |" in md
    assert (
        "| FMT vs LoRA | 2.5e+15 (extrapolated beyond the runs) | none in range | FMT 0.031, LoRA ? |"
        in md
    )
    assert "## PET size to use (LoRA rank / prompt length)" in md
    assert "| LoRA | 3000 | 16 | 4 | 3.21 [3.1, 3.3] | 0.01 |" in md
    plain_doc = {**doc, "critical_flops": [], "pet_size_choice": []}
    plain = render_markdown(report_sections(plain_doc, [], None, []), report_title(plain_doc))
    assert "Compute-matched" not in plain and "PET size to use" not in plain
