"""Base-model losses computed once per (model, evaluation inputs) and reused (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest

from ftscale.finetune import basecache, run_finetune
from ftscale.finetune.batching import Encoded


def _enc(*rows):
    return Encoded([np.asarray(r, dtype=np.int64) for r in rows], [1] * len(rows))


def test_stored_once_then_read_and_keyed_by_everything_that_decides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path))
    calls = []

    def compute(v=2.5):
        calls.append(v)
        return v

    args = ("m1", _enc([1, 2, 3]), "auto", "cpu")
    assert basecache.base_loss(*args, compute, "zero_shot") == (2.5, False)
    assert basecache.base_loss(*args, lambda: compute(9.0), "zero_shot") == (2.5, True)
    assert calls == [2.5]
    # another model, other ids, another prompt boundary, precision or device: not the same loss
    others = [
        ("m2", _enc([1, 2, 3]), "auto", "cpu"),
        ("m1", _enc([1, 2, 4]), "auto", "cpu"),
        ("m1", Encoded([np.asarray([1, 2, 3])], [2]), "auto", "cpu"),
        ("m1", _enc([1, 2, 3]), "bf16", "cpu"),
        ("m1", _enc([1, 2, 3]), "auto", "cuda"),
    ]
    for o in others:
        assert basecache.base_loss(*o, lambda: compute(1.0), "zero_shot") == (1.0, False)
    assert len(calls) == 1 + len(others)
    # no fingerprint (a model handed in) or a non-finite loss: never stored
    assert basecache.base_loss(None, *args[1:], lambda: 3.0, "dev") == (3.0, False)
    nan_args = ("m3", _enc([5]), "auto", "cpu")
    basecache.base_loss(*nan_args, lambda: float("nan"), "dev")
    assert basecache.base_loss(*nan_args, lambda: 4.0, "dev") == (4.0, False)


def test_a_corrupt_entry_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path))
    args = ("m1", _enc([1]), "auto", "cpu")
    basecache.base_loss(*args, lambda: 1.0, "dev")
    (f,) = (tmp_path / "base_losses").iterdir()
    f.write_text("{not json")
    assert basecache.base_loss(*args, lambda: 2.0, "dev") == (2.0, False)


@pytest.mark.slow
def test_a_second_run_on_the_same_model_and_task_reuses_the_base_losses(tmp_path, monkeypatch):
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path))
    cfg = dict(
        model="ftlm-1", task="translate-en-de", method="lora", data_size=16, steps=4,
        batch_size=8, max_length=64, eval_every=2, dev_examples=8, test_examples=8,
        decode_examples=0, forget_examples=4, lr=1e-2,
    )  # fmt: skip
    first = run_finetune(cfg)
    assert first["base_losses_cached"] == []
    second = run_finetune({**cfg, "seed": 1, "method": "ia3", "lr": 1e-1})
    assert sorted(second["base_losses_cached"]) == ["dev", "forget", "zero_shot"]
    assert second["zero_shot_loss"] == first["zero_shot_loss"]
    assert second["forget_loss_before"] == first["forget_loss_before"]
    monkeypatch.setenv("FTSCALE_NO_BASE_CACHE", "1")
    fresh = run_finetune({**cfg, "seed": 1, "method": "ia3", "lr": 1e-1})
    assert fresh["base_losses_cached"] == []
    assert fresh["zero_shot_loss"] == pytest.approx(second["zero_shot_loss"], rel=1e-6)
    assert fresh["loss"] == pytest.approx(second["loss"], rel=1e-6)
