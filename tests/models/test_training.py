"""The pieces pretraining and finetuning share (ftscale.models.training, models.tokens.windows):
one learning-rate schedule, one evaluation loop, one windowing helper, one parameter counter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftscale.models.tokens import heldout_windows, windows
from ftscale.models.training import count_parameters, mean_token_nll, warmup_cosine

# --- the learning-rate schedule


def _finetune_reference(step, total, lr, warmup, min_ratio):
    """The finetune engine's rate before the schedules were merged (1-based steps)."""
    w = int(round(warmup * total))
    if step <= w:
        return lr * step / w
    frac = (step - w) / max(1, total - w)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def _pretrain_reference(step, total, lr, warmup_frac, min_ratio):
    """The pretraining loop's rate before the schedules were merged (0-based steps)."""
    warmup = max(1, int(warmup_frac * total))
    min_lr = lr * min_ratio
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


@pytest.mark.parametrize(
    "total,lr,warmup,ratio",
    [(100, 1.0, 0.1, 0.1), (4096, 0.01, 0.05, 0.1), (37, 3e-4, 0.0, 0.0), (250, 6e-4, 0.3, 0.5)],
)
def test_both_conventions_keep_their_rates_bit_for_bit(total, lr, warmup, ratio):
    ft = [
        warmup_cosine(s, total, lr, int(round(warmup * total)), ratio) for s in range(1, total + 1)
    ]
    assert ft == [_finetune_reference(s, total, lr, warmup, ratio) for s in range(1, total + 1)]
    w = max(1, int(warmup * total))
    pt = [warmup_cosine(s + 1, total, lr, w, ratio, convention="pretrain") for s in range(total)]
    assert pt == [_pretrain_reference(s, total, lr, warmup, ratio) for s in range(total)]


def test_warmup_then_cosine_to_the_floor():
    lrs = [warmup_cosine(s, 100, 2.0, 10, 0.25) for s in range(1, 121)]
    assert lrs[0] == pytest.approx(0.2) and lrs[9] == 2.0  # linear warm-up to the peak
    assert all(a > b for a, b in zip(lrs[9:99], lrs[10:100], strict=True))  # cosine down
    assert lrs[99] == pytest.approx(0.5) and set(lrs[99:]) == {lrs[99]}  # floor, held
    # pretraining's clock runs one step behind: it reaches the floor one step later
    pt = [warmup_cosine(s, 100, 2.0, 10, 0.25, convention="pretrain") for s in range(1, 102)]
    assert pt[99] > 0.5 and pt[100] == pytest.approx(0.5)
    assert pt[10] == 2.0 and lrs[10] < 2.0


# --- the evaluation loop


class _Toy:
    """A model that records its mode, for the loop's bookkeeping."""

    def __init__(self, training):
        self.training = training

    def eval(self):
        self.training = False

    def train(self, mode=True):
        self.training = mode


def test_mean_token_nll_is_the_token_weighted_mean_and_restores_the_mode():
    import torch

    for was in (True, False):
        model = _Toy(was)
        seen = []

        def loss_sum(b, model=model, seen=seen):
            seen.append((model.training, torch.is_grad_enabled()))
            return torch.tensor(b[0], dtype=torch.float32), b[1]

        got = mean_token_nll(model, [(3.0, 2), (9.0, 4)], loss_sum, "cpu")
        assert got == 12.0 / 6  # sums over tokens, not a mean of batch means (2.0 vs 1.875)
        assert seen == [(False, False), (False, False)]  # eval mode, no gradients
        assert model.training is was
    assert mean_token_nll(_Toy(True), [], loss_sum, "cpu") == 0.0


# --- windows


def test_windows_back_to_back_and_strided():
    ids = np.arange(10)
    assert [w.tolist() for w in windows(ids, 5, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [w.tolist() for w in windows(ids, 2, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [w.tolist() for w in windows(np.arange(9), 5, 4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    strided = windows(ids, 5, 4, stride=3)
    assert [w.tolist() for w in strided] == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]


def test_heldout_windows_are_shifted_pairs_and_short_streams_give_one_window():
    packed = {"a": np.arange(11, dtype=np.uint16), "b": np.arange(3), "c": np.arange(1)}
    got = heldout_windows(packed, 4, 8)
    x, y = got["a"]
    assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and y.tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert str(x.dtype) == str(y.dtype) == "torch.int64"
    assert [t.tolist() for t in got["b"]] == [[[0, 1]], [[1, 2]]]  # shorter than one window
    assert "c" not in got  # a single token scores nothing
    assert heldout_windows(packed, 4, 1)["a"][0].tolist() == [[0, 1, 2, 3]]


# --- parameter counts


def _llama(tie: bool):
    """A one-layer model of the family's shape rule, its head tied or its own."""
    from ftscale.models.family import Shape, llama_config

    config = llama_config(Shape(n_layer=1, d_model=16, n_head=2, d_ff=32, vocab_size=100))
    config.tie_word_embeddings = tie
    return config


@pytest.mark.parametrize("tie", [True, False])
def test_tied_and_untied_heads_count_the_same_on_the_meta_device(tie):
    import torch
    from transformers import AutoModelForCausalLM

    from ftscale.models.registry import _count_params

    config = _llama(tie)
    model = AutoModelForCausalLM.from_config(config)
    body = sum(
        p.numel() for n, p in model.named_parameters() if "embed" not in n and "lm_head" not in n
    )
    embed = 100 * 16
    want = (body + embed, body) if tie else (body + 2 * embed, body)
    assert count_parameters(model) == want
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(config)
    assert count_parameters(meta) == want
    # the registry's count (model_info of a Hugging Face folder) is the same counter
    assert _count_params(config) == want
