"""Learning-rate search and the warmup-stable-decay schedule (issue 14, items 1 and 2)."""

from __future__ import annotations

import math

import pytest

from ftscale.errors import UserError
from ftscale.finetune import FinetuneConfig, run_finetune, validate
from ftscale.finetune.optim import Schedule
from ftscale.finetune.rates import AUTO_LR_FACTORS, lr_candidates, parse_lr
from ftscale.finetune.runkey import run_key
from ftscale.finetune.search import rung_steps, search_steps
from ftscale.models.training import warmup_cosine

# --- schedules


def test_cosine_schedule_is_the_shared_warmup_cosine():
    s = Schedule("cosine", 100, 0.5, 0.1, 0.1)
    want = [warmup_cosine(k, 100, 0.5, 10, 0.1) for k in range(1, 101)]
    assert [s.at(k) for k in range(1, 101)] == want
    assert s.end == 100 and s.on_plateau(40) is True  # a plateau stops a cosine run


def test_wsd_warms_up_holds_then_decays_linearly_to_the_floor():
    s = Schedule("wsd", 100, 1.0, 0.1, 0.1, decay=0.2)
    lrs = [s.at(k) for k in range(1, 101)]
    assert lrs[9] == pytest.approx(1.0) and lrs[4] == pytest.approx(0.5)  # warm-up
    assert all(v == 1.0 for v in lrs[10:80])  # stable
    assert lrs[-1] == pytest.approx(0.1)  # decayed to lr * min_ratio at the budget's end
    assert all(a > b for a, b in zip(lrs[80:], lrs[81:], strict=False))
    assert s.end == 100


def test_wsd_plateau_starts_the_decay_and_ends_the_run_after_it():
    s = Schedule("wsd", 200, 1.0, 0.05, 0.1, decay=0.25)
    assert s.on_plateau(60) is False  # no stop: the decay begins after step 60
    assert s.plateau_step == 60 and s.end == 110  # 50 steps of decay
    assert s.at(60) == 1.0 and s.at(110) == pytest.approx(0.1) and s.at(85) == pytest.approx(0.55)
    assert s.on_plateau(90) is False and s.end == 110  # a second plateau changes nothing


def test_wsd_plateau_late_in_the_budget_keeps_the_scheduled_decay():
    s = Schedule("wsd", 100, 1.0, 0.1, 0.1, decay=0.2)
    assert s.on_plateau(90) is False and s.plateau_step is None and s.end == 100


def test_wsd_plateau_in_warm_up_decays_from_the_rate_reached():
    s = Schedule("wsd", 100, 1.0, 0.5, 0.1, decay=0.2)
    s.on_plateau(10)
    assert s.at(10) == pytest.approx(0.2) and s.at(11) < 0.2  # no jump up to the peak


def test_wsd_without_decay_on_plateau_stops_like_cosine():
    s = Schedule("wsd", 100, 1.0, 0.1, 0.1, decay_on_plateau=False)
    assert s.on_plateau(30) is True


# --- candidates, parsing, validation


def test_auto_is_the_method_default_times_the_factors():
    cfg = FinetuneConfig(model="m", task="t", method="lora", lr="auto")
    from ftscale.finetune.methods import METHODS

    d = METHODS["lora"].default_lr
    assert lr_candidates(cfg) == pytest.approx(sorted(d * f for f in AUTO_LR_FACTORS))
    assert lr_candidates(FinetuneConfig(model="m", task="t", method="lora")) == [d]
    assert lr_candidates(FinetuneConfig(model="m", task="t", lr=[3e-3, 1e-3, 3e-3])) == [
        1e-3,
        3e-3,
    ]


def test_parse_lr():
    assert parse_lr("auto") == "auto" and parse_lr("AUTO") == "auto"
    assert parse_lr("1e-3") == 1e-3
    assert parse_lr("1e-3, 3e-3") == [1e-3, 3e-3]
    with pytest.raises(UserError, match="--lr"):
        parse_lr("fast")


@pytest.mark.parametrize(
    ("over", "msg"),
    [
        ({"lr": "fast"}, "learning rate"),
        ({"lr": []}, "1 to 16 rates"),
        ({"lr": [1e-3] * 17}, "1 to 16 rates"),
        ({"lr": [1e-3, 2.0]}, r"\(0, 1.0\]"),
        ({"lr": [1e-3, "x"]}, "finite number"),
        ({"lr": [1e-3, True]}, "finite number"),
        ({"lr": math.nan}, "finite number"),
        ({"lr_search": "random"}, "unknown lr search"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"decay": 0}, "decay fraction"),
        ({"decay": 1.5}, "decay fraction"),
        ({"decay_on_plateau": "yes"}, "decay on plateau must be true or false"),
    ],
)
def test_bad_search_settings_are_user_errors(over, msg):
    with pytest.raises(UserError, match=msg):
        validate(FinetuneConfig(model="m", task="t", **over))


def test_run_key_resolves_auto_and_ignores_unused_settings():
    base = dict(model="m", task="t", method="lora")

    def key(**over):
        return run_key(FinetuneConfig(**base, **over), data_hash="d", model_id="w")

    from ftscale.finetune.methods import METHODS

    d = METHODS["lora"].default_lr
    assert key(lr="auto") == key(lr=[d * f for f in AUTO_LR_FACTORS])
    assert key(lr="auto") != key()
    assert key(lr_search="grid") == key()  # one rate: no search to run differently
    assert key(lr="auto", lr_search="grid") != key(lr="auto")
    assert key(decay=0.5) == key()  # a cosine run has no decay fraction
    assert key(schedule="wsd", decay=0.5) != key(schedule="wsd")


# --- successive halving arithmetic


def test_rung_steps_and_search_cost():
    assert rung_steps(300, 1, 8) == []
    assert rung_steps(300, 3, 10) == [100]
    assert rung_steps(32, 3, 8) == [16]  # rounded up to a dev evaluation
    assert rung_steps(900, 9, 10) == [100, 300]
    assert search_steps(1, 300, "halving", 10) == 300
    assert search_steps(3, 300, "grid", 10) == 900
    assert search_steps(3, 300, "halving", 10) == 3 * 100 + 200
    assert search_steps(9, 900, "halving", 10) == 9 * 100 + 3 * 200 + 600


# --- the engine


def _run(toy, quick, **over):
    task, tok, model = toy
    return run_finetune(quick(decode_examples=0, **over), model=model, tokenizer=tok, task=task)


def test_a_list_of_one_rate_is_that_rate(toy, quick):
    a = _run(toy, quick, lr=1e-2, steps=12, eval_every=4)
    b = _run(toy, quick, lr=[1e-2], steps=12, eval_every=4)
    assert (a["loss"], a["dev_loss"], a["best_step"]) == (b["loss"], b["dev_loss"], b["best_step"])
    assert b["lr"] == 1e-2 and b["lr_trials"] is None


def test_grid_search_keeps_the_best_dev_rate_and_each_candidate_trains_alone(toy, quick):
    rates = [1e-4, 1e-2, 3e-1]
    rec = _run(toy, quick, lr=rates, lr_search="grid", steps=12, eval_every=4)
    trials = {t["lr"]: t for t in rec["lr_trials"]}
    assert set(trials) == set(rates) and rec["lr_candidates"] == rates
    best = min(trials.values(), key=lambda t: t["best_dev"])
    assert rec["lr"] == best["lr"] and rec["dev_loss"] == best["best_dev"]
    # a candidate's run is the single-rate run at that rate: same batches, own optimiser state,
    # the model's parameters swapped in and out between candidates
    for lr in rates:
        alone = _run(toy, quick, lr=lr, steps=12, eval_every=4)
        assert trials[lr]["best_dev"] == pytest.approx(alone["dev_loss"], abs=1e-6)
    assert rec["loss"] == pytest.approx(
        _run(toy, quick, lr=rec["lr"], steps=12, eval_every=4)["loss"], abs=1e-6
    )
    assert rec["search_steps"] == sum(t["steps"] for t in rec["lr_trials"]) == 36


def test_halving_stops_the_worse_rates_at_the_rung(toy, quick):
    rec = _run(toy, quick, lr=[1e-5, 1e-4, 1e-2], steps=24, eval_every=4)
    by = {t["lr"]: t for t in rec["lr_trials"]}
    assert by[1e-2]["steps"] == 24 and rec["lr"] == 1e-2
    assert [by[r]["stop"] for r in (1e-5, 1e-4)] == ["halved", "halved"]
    assert by[1e-5]["steps"] == by[1e-4]["steps"] == 8  # 24 / 3
    assert rec["search_steps"] == 8 + 8 + 24
    assert rec["flops"] > _run(toy, quick, lr=1e-2, steps=24, eval_every=4)["flops"]


def test_wsd_run_records_where_the_decay_began(toy, quick):
    # a rate this small stops improving at once: the plateau starts the decay, the run ends
    # with it instead of stopping at the plateau
    rec = _run(
        toy, quick, method="prompt", prompt_length=2, lr=1e-7, steps=60, eval_every=1,
        patience=2, schedule="wsd", decay=0.25,
    )  # fmt: skip
    assert rec["status"] == "done" and rec["decay_step"] is not None
    assert rec["steps"] == rec["decay_step"] + 15


def test_a_diverging_candidate_is_dropped_from_the_search(toy, quick, monkeypatch):
    import torch

    from ftscale.finetune import engine as E

    original = E.train_step

    def poisoned(runner, batch, opt, params, grad_clip):
        loss = original(runner, batch, opt, params, grad_clip)
        return loss * torch.nan if opt.param_groups[0]["lr"] > 0.05 else loss

    monkeypatch.setattr(E, "train_step", poisoned)
    rec = _run(toy, quick, method="fmt", lr=[1e-3, 1e-1], lr_search="grid", steps=16, eval_every=4)
    by = {t["lr"]: t for t in rec["lr_trials"]}
    assert by[1e-1]["stop"] == "diverged" and by[1e-3]["stop"] == "budget"
    assert rec["status"] == "done" and rec["lr"] == 1e-3
    every = _run(toy, quick, method="fmt", lr=[1e-1, 2e-1], steps=16, eval_every=4)
    assert every["status"] == "diverged" and every["loss"] is None
