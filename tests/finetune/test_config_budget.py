"""The training budget: steps, epochs, and the [min_steps, max_steps] clamp of an epoch budget."""

import pytest

from ftscale.errors import UserError
from ftscale.finetune.config import DEFAULT_STEPS, FinetuneConfig, budget_steps, validate


def _cfg(**over):
    base = dict(model="ftlm-1", task="translate-en-de", method="lora", batch_size=8)
    return FinetuneConfig(**{**base, **over})


def test_steps_and_default():
    assert budget_steps(_cfg(steps=64)) == 64
    assert budget_steps(_cfg()) == DEFAULT_STEPS


@pytest.mark.parametrize(
    ("data_size", "epochs", "want"),
    [(800, 4, 400), (125, 4, 63), (12, 4, 6), (1, 0.5, 1)],
)
def test_epochs_round_up(data_size, epochs, want):
    assert budget_steps(_cfg(data_size=data_size, epochs=epochs)) == want


@pytest.mark.parametrize(
    ("data_size", "want"),
    # 4 epochs at batch 8: 6, 20, 63, 200, 500 steps, clamped to [32, 300]
    [(12, 32), (40, 32), (125, 63), (400, 200), (1000, 300)],
)
def test_epoch_budget_is_clamped(data_size, want):
    cfg = _cfg(data_size=data_size, epochs=4, min_steps=32, max_steps=300)
    validate(cfg)
    assert budget_steps(cfg) == want


def test_one_sided_clamps():
    assert budget_steps(_cfg(data_size=12, epochs=4, min_steps=32)) == 32
    assert budget_steps(_cfg(data_size=1000, epochs=4, min_steps=32)) == 500
    assert budget_steps(_cfg(data_size=12, epochs=4, max_steps=300)) == 6
    assert budget_steps(_cfg(data_size=1000, epochs=4, max_steps=300)) == 300


@pytest.mark.parametrize(
    ("over", "msg"),
    [
        (dict(steps=64, min_steps=32), "give epochs too"),
        (dict(max_steps=100), "give epochs too"),
        (dict(epochs=4, min_steps=0), "min steps must be a positive integer"),
        (dict(epochs=4, max_steps=-3), "max steps must be a positive integer"),
        (dict(epochs=4, min_steps=2.5), "min steps must be an integer"),
        (dict(epochs=4, max_steps=True), "max steps must be an integer"),
        (dict(epochs=4, min_steps=64, max_steps=32), "cannot exceed max steps"),
    ],
)
def test_bad_clamps_are_refused(over, msg):
    with pytest.raises(UserError, match=msg):
        validate(_cfg(**over))


def test_equal_clamps_fix_the_budget():
    cfg = _cfg(data_size=5000, epochs=4, min_steps=50, max_steps=50)
    validate(cfg)
    assert budget_steps(cfg) == 50
