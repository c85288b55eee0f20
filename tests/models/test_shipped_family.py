"""The family shipped in ftscale/models/family/: complete, small, and fit for a scaling study.

These read the shipped metadata (recorded by `ftscale pretrain --family default`); they fail,
not skip, if the family is missing, because the main job depends on it.
"""

from __future__ import annotations

import json

import pytest

from ftscale.models import FAMILY_DIR, list_models, load_model
from ftscale.models.checkpoint import META_FILE, sha256_file

STREAMS = ("en", "de", "zh", "en-de", "en-zh")


@pytest.fixture(scope="module")
def family():
    f = FAMILY_DIR / "family.json"
    assert f.exists(), (
        f"no shipped family at {FAMILY_DIR}; run: ftscale pretrain --family default --out {FAMILY_DIR}"
    )
    fam = json.loads(f.read_text())
    metas = {}
    for p in FAMILY_DIR.iterdir():
        if (p / META_FILE).exists():
            metas[p.name] = json.loads((p / META_FILE).read_text())
    return fam, metas


def _finals(metas):
    return sorted((m for m in metas.values() if m["final"]), key=lambda m: m["model_size"])


def test_at_least_five_sizes_spanning_30x(family):
    _, metas = family
    finals = _finals(metas)
    assert [m["name"] for m in finals] == [f"ftlm-{k}" for k in range(1, len(finals) + 1)]
    assert len(finals) >= 5
    assert finals[-1]["model_size_nonembed"] / finals[0]["model_size_nonembed"] >= 30
    assert len({m["pretrain_tokens"] for m in finals}) == 1  # they differ only in size


@pytest.mark.parametrize("stream", STREAMS)
def test_heldout_loss_falls_with_size(family, stream):
    _, metas = family
    losses = [m["heldout_loss"][stream] for m in _finals(metas)]
    assert all(a > b for a, b in zip(losses, losses[1:], strict=False)), losses


@pytest.mark.parametrize("stream", STREAMS)
def test_heldout_loss_falls_with_pretraining_tokens(family, stream):
    fam, metas = family
    for member in fam["recipe"]["intermediate_members"]:
        ckpts = sorted(
            (m for m in metas.values() if m["member"] == member), key=lambda m: m["pretrain_tokens"]
        )
        assert len(ckpts) >= 4
        losses = [m["heldout_loss"][stream] for m in ckpts]
        assert all(a > b for a, b in zip(losses, losses[1:], strict=False)), (member, losses)


def test_size_budget_fp16_and_integrity(family):
    from safetensors import safe_open

    _, metas = family
    total = sum(p.stat().st_size for p in FAMILY_DIR.rglob("*") if p.is_file())
    assert total <= 25 * 2**20, f"{total / 2**20:.1f} MiB"
    assert not (FAMILY_DIR / ".state").exists()
    for name, meta in metas.items():
        weights = FAMILY_DIR / name / "model.safetensors"
        assert sha256_file(weights) == meta["weights_sha256"], name
        with safe_open(str(weights), "pt") as f:
            assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}  # noqa: SIM118


def test_names_list_and_load(family, monkeypatch):
    monkeypatch.delenv("FTSCALE_MODEL_PATH", raising=False)
    _, metas = family
    assert set(metas) <= {m.name for m in list_models()}
    model, tok, info = load_model("ftlm-1")
    assert 3500 <= len(tok) <= model.config.vocab_size == 4096
    assert info.pretrain_tokens == metas["ftlm-1"]["pretrain_tokens"]


def test_shipped_family_is_what_the_default_recipe_builds(family):
    """`ftscale pretrain --family default` must rebuild this family: same recipe, and every
    checkpoint made by that recipe's member (shape, peak lr, schedule, data)."""
    from ftscale.models.recipe import member_hash, recipe_from, recipe_hash, recipe_shapes

    fam, metas = family
    recipe = recipe_from(None)
    assert fam["recipe"] == recipe
    assert fam["recipe_hash"] == recipe_hash(recipe)
    shapes = recipe_shapes(recipe)
    for name, meta in metas.items():
        assert meta["recipe_hash"] == member_hash(recipe, meta["member"], shapes[meta["member"]]), (
            name
        )
