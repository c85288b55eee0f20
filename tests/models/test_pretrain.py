"""Pretraining: checkpoints, metadata, determinism, resume, and what a half-written run leaves."""

from __future__ import annotations

import json

import pytest

from ftscale.errors import UserError
from ftscale.models.checkpoint import META_FILE
from ftscale.models.loop import pretrain_lr
from ftscale.models.pretrain import pretrain_family, recipe_from


def _meta(path):
    return json.loads((path / META_FILE).read_text())


def test_tiny_family_checkpoints_and_meta(tiny_family):
    from transformers import AutoModelForCausalLM

    names = sorted(p.name for p in tiny_family.iterdir() if not p.name.startswith("."))
    assert names == [
        "family.json",
        "tiny-1",
        "tiny-2",
        "tiny-2@256",
        "tiny-2@512",
        "tiny-2@768",
        "tokenizer",
    ]
    ckpts = ["tiny-2@256", "tiny-2@512", "tiny-2@768", "tiny-2"]
    metas = [_meta(tiny_family / n) for n in ckpts]
    assert [m["pretrain_tokens"] for m in metas] == [256, 512, 768, 1024]
    for n, m in zip(ckpts, metas, strict=True):
        assert m["name"] == n and m["family"] == "tiny"
        assert m["model_size"] > m["model_size_nonembed"] > 0
        assert set(m["heldout_loss"]) == {"en", "de", "zh", "en-de", "en-zh"}
        files = {p.name for p in (tiny_family / n).iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", META_FILE} <= files
        model = AutoModelForCausalLM.from_pretrained(tiny_family / n)
        assert sum(p.numel() for p in model.parameters()) == m["model_size"]
    # held-out loss falls with pretraining tokens, and with size at equal tokens
    for stream in metas[0]["heldout_loss"]:
        losses = [m["heldout_loss"][stream] for m in metas]
        assert losses == sorted(losses, reverse=True), stream
        assert _meta(tiny_family / "tiny-1")["heldout_loss"][stream] > losses[-1]
    fam = json.loads((tiny_family / "family.json").read_text())
    assert [m["name"] for m in fam["members"]] == ["tiny-1", *ckpts]
    assert not (tiny_family / ".state").exists()  # resume state is not shipped


def test_weights_are_fp16_and_no_optimizer_state_in_checkpoint(tiny_family):
    from safetensors import safe_open

    with safe_open(str(tiny_family / "tiny-2" / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}  # noqa: SIM118
    assert dtypes == {"torch.float16"}
    assert not list((tiny_family / "tiny-2").glob("*.pt"))


@pytest.fixture
def one(tiny_recipe):
    """A one-member recipe (tiny-2 only), with overrides."""

    def make(**kw):
        return {**tiny_recipe, "shapes": {"tiny-2": tiny_recipe["shapes"]["tiny-2"]}, **kw}

    return make


def test_deterministic_for_a_seed(one, tmp_path, corpus, tokenizer):
    runs = []
    for i, seed in enumerate((0, 0, 1)):
        pretrain_family(tmp_path / str(i), one(seed=seed), corpus=corpus, tokenizer=tokenizer)
        runs.append(_meta(tmp_path / str(i) / "tiny-2"))
    assert runs[0]["weights_sha256"] == runs[1]["weights_sha256"]
    assert runs[0]["heldout_loss"] == runs[1]["heldout_loss"]
    assert runs[0]["weights_sha256"] != runs[2]["weights_sha256"]


def test_resume_after_interruption_reproduces_the_uninterrupted_run(
    one, tmp_path, corpus, tokenizer
):
    from ftscale.models import pretrain as pt

    full = tmp_path / "full"
    pretrain_family(full, one(), corpus=corpus, tokenizer=tokenizer)

    out = tmp_path / "interrupted"
    real = pt.train_model

    def stop_early(*args, **kwargs):
        return real(*args, **kwargs, stop_after=3)

    pt.train_model = stop_early
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain_family(out, one(), corpus=corpus, tokenizer=tokenizer)
    finally:
        pt.train_model = real
    assert (out / "tiny-2@256").exists() and not (out / "tiny-2").exists()
    assert (out / ".state" / "tiny-2" / "state.pt").exists()
    pretrain_family(out, one(), corpus=corpus, tokenizer=tokenizer)
    for name in ("tiny-2@256", "tiny-2@512", "tiny-2@768", "tiny-2"):
        assert _meta(out / name)["weights_sha256"] == _meta(full / name)["weights_sha256"], name


def test_a_different_recipe_in_the_same_folder_is_refused(one, tmp_path, corpus, tokenizer):
    pretrain_family(tmp_path / "f", one(), corpus=corpus, tokenizer=tokenizer)
    with pytest.raises(UserError, match="different recipe"):
        pretrain_family(tmp_path / "f", one(lr=5e-3), corpus=corpus, tokenizer=tokenizer)


def test_tokenizer_larger_than_the_vocabulary_is_refused(one, tmp_path, corpus, tokenizer):
    with pytest.raises(UserError, match="vocab_size"):
        pretrain_family(tmp_path / "f", one(vocab_size=64), corpus=corpus, tokenizer=tokenizer)
    assert not list((tmp_path / "f").glob("tiny-*"))


@pytest.mark.parametrize(
    "bad",
    [
        {"tokens": 0},
        {"tokens": 10},  # less than one batch
        {"lr": float("nan")},
        {"checkpoint_fractions": [0.5]},
        {"no_such_key": 1},
        {"shapes": {"x": {"n_layer": 1, "d_model": 30, "n_head": 4, "d_ff": 8}}},
        {"stream_weights": {"klingon": 1.0}},
        {"member_lr": {"tiny-2": -1.0}},
        {"member_lr": {"no-such-member": 1e-3}},
    ],
)
def test_bad_recipes_are_user_errors(one, tmp_path, corpus, tokenizer, bad):
    with pytest.raises(UserError):
        pretrain_family(tmp_path / "f", {**one(), **bad}, corpus=corpus, tokenizer=tokenizer)
    assert not list((tmp_path / "f").glob("x*")) and not list((tmp_path / "f").glob("tiny-*"))


def test_bad_corpus_is_a_user_error(one, tmp_path, tokenizer):
    for corpus in ({"train": {}}, {"train": {"en": "not a list"}, "heldout": {}}):
        with pytest.raises(UserError, match="corpus"):
            pretrain_family(tmp_path / "f", one(), corpus=corpus, tokenizer=tokenizer)
    with pytest.raises(UserError, match="too short"):
        pretrain_family(
            tmp_path / "g",
            one(),
            tokenizer=tokenizer,
            corpus={"train": {"en": ["a b"]}, "heldout": {"en": ["a b"]}},
        )


def test_cosine_schedule_with_warmup():
    r = recipe_from({"lr": 1e-3, "warmup_frac": 0.1, "min_lr_ratio": 0.1})
    lrs = [pretrain_lr(s, 100, r) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)


def test_a_finished_folder_is_kept_not_retrained(one, tmp_path, corpus, tokenizer, monkeypatch):
    from ftscale.models import loop as pt

    out = tmp_path / "f"
    pretrain_family(out, one(), corpus=corpus, tokenizer=tokenizer)
    assert not (out / ".state").exists()  # the state goes when the family is done
    before = _meta(out / "tiny-2")

    def no_training(*a, **k):
        raise AssertionError("a finished member was trained again")

    monkeypatch.setattr(pt, "evaluate", no_training)
    fam = pretrain_family(out, one(), corpus=corpus, tokenizer=tokenizer)
    assert _meta(out / "tiny-2") == before
    assert [m["name"] for m in fam["members"]][-1] == "tiny-2"
    # the curve of held-out loss every 1/8 of the run ends at the final checkpoint's value
    assert before["heldout_curve"][-1]["heldout_loss"] == before["heldout_loss"]
    assert len(before["heldout_curve"]) == 8


def test_member_hash_covers_the_members_own_learning_rate_only():
    from ftscale.models.family import member_shape
    from ftscale.models.recipe import DEFAULT_RECIPE, member_hash

    small, big = member_shape(2), member_shape(6)  # widths 64 and 128
    a = {**DEFAULT_RECIPE, "lr_ref_width": 96}
    b = {**DEFAULT_RECIPE, "lr_ref_width": 112}  # changes the peak lr of width 128 only
    assert member_hash(a, "ftlm-2", small) == member_hash(b, "ftlm-2", small)
    assert member_hash(a, "ftlm-6", big) != member_hash(b, "ftlm-6", big)
    assert member_hash(a, "ftlm-2", small) != member_hash({**a, "seed": 1}, "ftlm-2", small)
    assert member_hash(a, "ftlm-2", small) != member_hash({**a, "lr": 5e-3}, "ftlm-2", small)


def test_member_lr_replaces_the_width_rule_for_that_member():
    from ftscale.models.family import member_shape
    from ftscale.models.recipe import member_hash, peak_lr, recipe_from

    r = recipe_from({"member_lr": {"ftlm-5": 5e-3}})
    assert peak_lr(r, member_shape(5), "ftlm-5") == 5e-3
    assert peak_lr(r, member_shape(6), "ftlm-6") == peak_lr(recipe_from(None), member_shape(6))
    base = recipe_from(None)
    assert member_hash(r, "ftlm-6", member_shape(6)) == member_hash(base, "ftlm-6", member_shape(6))
    assert member_hash(r, "ftlm-5", member_shape(5)) != member_hash(base, "ftlm-5", member_shape(5))


def test_reading_losses_in_bulk_changes_nothing(one, tmp_path, corpus, tokenizer, monkeypatch):
    """The CUDA policy (losses read every log_every steps, one host sync each) gives the CPU
    policy's weights, train loss (EMA) and held-out losses, bit for bit."""
    import torch

    from ftscale.models import loop as pt

    assert pt.loss_read_every(torch.device("cpu"), 50) == 1
    assert pt.loss_read_every(torch.device("cuda"), 50) == 50
    # 32 steps; held-out evaluation (and a read) every 1/8 = 4 steps, a log line every 8
    recipe = one(tokens=32 * 4 * 32, log_every=8)
    pretrain_family(tmp_path / "each", recipe, corpus=corpus, tokenizer=tokenizer)
    reads = []
    real_read = pt.read_losses

    def counted_read(losses):
        reads.append(len(losses))
        return real_read(losses)

    monkeypatch.setattr(pt, "loss_read_every", lambda device, every: every)
    monkeypatch.setattr(pt, "read_losses", counted_read)
    pretrain_family(tmp_path / "bulk", recipe, corpus=corpus, tokenizer=tokenizer)
    assert reads == [4] * 8
    names = sorted(p.name for p in (tmp_path / "each").glob("tiny-2*"))
    assert len(names) == 4  # three intermediate checkpoints and the final one
    for name in names:
        a, b = _meta(tmp_path / "each" / name), _meta(tmp_path / "bulk" / name)
        assert a["weights_sha256"] == b["weights_sha256"], name
        assert (a["train_loss"], a["heldout_loss"]) == (b["train_loss"], b["heldout_loss"])


def test_a_nan_read_in_bulk_names_its_own_step(one, tmp_path, corpus, tokenizer, monkeypatch):
    import torch.nn.functional as F

    from ftscale.models import loop as pt

    real = F.cross_entropy
    calls = {"train": 0}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("reduction", "mean") == "mean":  # training steps (evaluation sums)
            calls["train"] += 1
            if calls["train"] == 3:
                return out * float("nan")
        return out

    monkeypatch.setattr(pt, "loss_read_every", lambda device, every: 8)
    monkeypatch.setattr(F, "cross_entropy", poisoned)
    with pytest.raises(UserError, match="at step 3; lower the learning rate"):
        pretrain_family(tmp_path / "f", one(), corpus=corpus, tokenizer=tokenizer)
