"""The adaptive design: questions, scoring by expected uncertainty reduction, the adaptive loop."""

import subprocess
import sys
from pathlib import Path

import pytest

from ftscale.analysis.study import fit_study
from ftscale.errors import UserError
from ftscale.study import adaptive
from ftscale.study.adaptive.scoring import _candidates
from ftscale.study.executors.base import execute
from ftscale.study.plan import plan_study
from ftscale.study.runner import run_study, sync_plan
from ftscale.study.spec import parse_study
from ftscale.study.store import RunStore
from ftscale.testing.simulated import simulated_study

HASHES = {"sim-task": "adaptive"}
ROOT = Path(__file__).resolve().parents[2]


def _study(holdout=()):
    d = simulated_study(models=("sim-1e5", "sim-3e5", "sim-1e6", "sim-3e6"), seeds=2)
    d["data_sizes"] = {"fmt": [100, 300, 1000, 3000], "lora": [100, 300, 1000, 3000]}
    d["fit"] = {"laws": ["multiplicative"], "holdout_largest": list(holdout), "bootstrap": 30}
    return parse_study(d)


def _inline(db):
    def run(keys):
        with RunStore(db) as store:
            store.register_runner()
            for r in store.claim(sorted(keys), limit=len(keys)):
                o = execute(r.spec)
                store.finish(r.run_key, o.status, o.record, o.error)

    return run


@pytest.fixture
def empty(tmp_path, sim_env):
    study = _study()
    db = tmp_path / "s.db"
    with RunStore(db) as store:
        sync_plan(study, store, plan_study(study, HASHES))
    return study, db


def _fittable(study, db):
    """Run the make-fittable block and return the fits document."""
    with RunStore(db) as store:
        out = adaptive.suggest(study, store, None, data_hashes=HASHES)
    assert out["mode"] == "make_fittable" and out["suggestions"]
    _inline(db)({r["run_key"] for r in out["suggestions"]})
    with RunStore(db) as store:
        return out, adaptive.fit_or_none(fit_study, study, store, HASHES)


def test_question_text_is_checked(sim_study):
    study = _study()
    assert adaptive.parse_question(None, study).kind == "recommend"
    q = adaptive.parse_question("critical fmt,lora at model=sim-1e6", study)
    assert q.methods == ("fmt", "lora") and q.model == "sim-1e6"
    q = adaptive.parse_question("recommend at model=sim-3e5 data_size=300", study)
    assert q.data_size == 300.0
    for bad in (
        "bogus",
        "critical fmt",
        "critical fmt,fmt",
        "critical fmt,xx",
        "recommend at model=sim-9",
        "recommend data_size=-3",
        "recommend at size=3",
        "critical fmt,lora data_size=100",
    ):
        with pytest.raises(UserError):
            adaptive.parse_question(bad, study)


def test_until_is_checked():
    assert adaptive.parse_until("p_best >= 0.95", "recommend") == ("p_best", ">=", 0.95)
    assert adaptive.parse_until("width<=0.3", "critical") == ("width", "<=", 0.3)
    for text, kind in (
        ("p_best >= 0.9", "critical"),
        ("width <= 1", "recommend"),
        ("x", "recommend"),
    ):
        with pytest.raises(UserError):
            adaptive.parse_until(text, kind)
    assert adaptive.criterion_holds({"p_best": 0.97, "uncertainty": 0.03}, ("p_best", ">=", 0.95))
    assert not adaptive.criterion_holds({"uncertainty": 0.4}, ("width", "<=", 0.3))


def test_first_suggestions_make_the_laws_fittable_cheaply(empty):
    study, db = empty
    out, doc = _fittable(study, db)
    assert any("fittable" in n for n in out["notes"])
    for method in study.methods:
        mine = [r for r in out["suggestions"] if r["method"] == method]
        assert len(mine) >= adaptive.MIN_FIT_POINTS
        assert len({r["model"] for r in mine}) >= 2 and len({r["data_size"] for r in mine}) >= 2
    # the cheapest block: never the largest model (costs grow with model size)
    assert "sim-3e6" not in {r["model"] for r in out["suggestions"]}
    q = adaptive.resolve_question(adaptive.parse_question(None, study), study, doc)
    state, missing = adaptive.design_state(q, doc)
    assert not missing and set(state.theta) == {"fmt", "lora"}


def test_suggestions_are_ranked_by_expected_reduction_per_cost(empty):
    study, db = empty
    _, doc = _fittable(study, db)
    with RunStore(db) as store:
        out = adaptive.suggest(study, store, doc, "critical fmt,lora", n=6, data_hashes=HASHES)
    assert out["mode"] == "sharpen" and len(out["suggestions"]) == 6
    scores = [r["score"] for r in out["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    now = out["current"]["uncertainty"]
    for r in out["suggestions"]:
        assert r["expected_reduction"] > 0
        assert r["expected_uncertainty"] == pytest.approx(now - r["expected_reduction"])
        assert r["score"] == pytest.approx(r["expected_reduction"] / r["cost"])
    points = {(r["method"], r["model"], r["data_size"]) for r in out["suggestions"]}
    assert len(points) == 6  # one seed per point within a round


def test_runs_the_fit_holds_out_are_not_scored(tmp_path, sim_env):
    study = _study(holdout=("model_size",))
    db = tmp_path / "h.db"
    with RunStore(db) as store:
        sync_plan(study, store, plan_study(study, HASHES))
    _, doc = _fittable(study, db)
    top = max(p["model_size"] for p in doc["points"])
    with RunStore(db) as store:
        cands, _ = _candidates(study, store, plan_study(study, HASHES), doc)
        q = adaptive.resolve_question(adaptive.parse_question(None, study), study, doc)
        state, _ = adaptive.design_state(q, doc)
        _, scored = adaptive.score_candidates(state, study, cands)
    held = [r for r in scored if r["x"] >= top]
    assert held and all(r["held_out"] and r["expected_reduction"] == 0 for r in held)
    assert any(not r["held_out"] for r in scored)


def test_adaptive_run_stops_at_the_criterion_and_the_grid_reuses_its_runs(empty):
    study, db = empty
    res = adaptive.run_adaptive(
        study,
        db,
        _inline(db),
        fit_study,
        question="critical fmt,lora",
        until="width <= 0.5",
        round_size=3,
        data_hashes=HASHES,
    )
    assert res["stopped"] == "criterion" and res["criterion_met"]
    assert res["current"]["width_log10"] <= 0.5
    n_grid = len(plan_study(study, HASHES))
    assert 0 < res["runs"] < n_grid
    assert res["rounds"][0]["mode"] == "make_fittable"
    # what it reports having spent is the runs' measured seconds, the first block's included
    from ftscale.study.store import RunStore

    with RunStore(db) as store:
        secs = [r.record["train_seconds"] for r in store.runs() if r.status == "done"]
    assert len(secs) == res["runs"]
    assert res["core_seconds"] == pytest.approx(sum(secs))
    # the same store, the same run keys: a later full run skips what the design ran
    summary = run_study(study, db, workers=1, progress=False, data_hashes=HASHES)
    assert summary.skipped == res["runs"] and summary.ran == n_grid - res["runs"]


def test_adaptive_run_respects_the_budget(empty):
    study, db = empty
    res = adaptive.run_adaptive(
        study, db, _inline(db), fit_study, until="p_best >= 1.01", max_cost=1.5, round_size=2,
        data_hashes=HASHES,
    )  # fmt: skip
    assert res["stopped"] == "budget" and res["spent"] <= 1.5
    assert not res["criterion_met"]


def test_run_study_only_runs_the_chosen_keys(tmp_path, sim_env):
    study = _study()
    keys = [r.run_key for r in plan_study(study, HASHES)][:3]
    summary = run_study(
        study, tmp_path / "o.db", workers=1, progress=False, data_hashes=HASHES, only=set(keys)
    )
    assert summary.planned == 3 and summary.counts["done"] == 3
    with RunStore(tmp_path / "o.db") as store:
        assert store.counts()["pending"] == len(plan_study(study, HASHES)) - 3


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "ftscale", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_cli_errors_are_one_line(tmp_path):
    tiny = str(ROOT / "examples" / "tiny.toml")
    cases = [
        ("study", "suggest", tiny, "--store", str(tmp_path / "none.db")),
        ("study", "run", tiny, "--store", str(tmp_path / "x.db"), "--until", "p_best >= 0.9"),
        ("study", "run", tiny, "--adaptive", "--question", "critical fmt,nope"),
        ("study", "suggest", tiny, "-n", "0"),
    ]
    for args in cases:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    RunStore(tmp_path / "empty.db").close()
    proc = _cli("study", "suggest", tiny, "--store", str(tmp_path / "empty.db"))
    assert proc.returncode == 2 and "no finished runs" in proc.stderr
