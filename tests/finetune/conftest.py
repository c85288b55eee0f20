"""Fixtures: a tiny learnable task, a trained BPE tokenizer and a random Llama (all < 1 s)."""

from __future__ import annotations

import warnings

import pytest

from ftscale.testing.toy import ToyTask, toy_model, toy_pretrain, toy_tokenizer


@pytest.fixture(scope="session")
def toy():
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    torch.set_num_threads(1)
    task = ToyTask(n_train=300, n_dev=32, n_test=32)
    tok = toy_tokenizer(task)
    # a little pretraining so that PET has a skill to steer (a random model has none)
    model = toy_pretrain(toy_model(tok, hidden_size=32, layers=2), tok, task, steps=40)
    return task, tok, model


def _quick(**over):
    """A cheap run configuration for the toy fixtures (a couple of seconds at most)."""
    cfg = dict(
        model="toy",
        task="toy-xx-de",
        method="lora",
        data_size=128,
        seed=0,
        steps=20,
        batch_size=16,
        eval_every=10,
        patience=0,
        dev_examples=32,
        test_examples=32,
        decode_examples=8,
        max_new_tokens=16,
        lr=1e-2,
    )
    cfg.update(over)
    return cfg


@pytest.fixture(scope="session")
def quick():
    return _quick
