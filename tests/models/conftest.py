"""A tiny multilingual corpus and tokenizer made in the test, so no test needs the real corpus."""

from __future__ import annotations

import random

import pytest

WORDS = {
    "en": str.split("the house is small and the garden is green we read a book every day"),
    "de": str.split("das haus ist klein und der garten ist grün wir lesen jeden tag ein buch"),
    "zh": list("这个房子很小花园是绿色的我们每天读一本书"),
}


def _doc(rng: random.Random, lang: str, n: int) -> str:
    sep = "" if lang == "zh" else " "
    return sep.join(rng.choice(WORDS[lang]) for _ in range(n))


def make_corpus(n_docs: int = 30, seed: int = 0) -> dict:
    rng = random.Random(seed)
    out = {}
    for split, k in (("train", n_docs), ("heldout", max(4, n_docs // 5))):
        streams = {lang: [_doc(rng, lang, 40) for _ in range(k)] for lang in WORDS}
        streams["en-de"] = [_doc(rng, "en", 15) + "\n" + _doc(rng, "de", 15) for _ in range(k)]
        streams["en-zh"] = [_doc(rng, "en", 15) + "\n" + _doc(rng, "zh", 15) for _ in range(k)]
        out[split] = streams
    return out


def make_tokenizer(texts: list[str], vocab_size: int = 300):
    """The project's byte-level BPE (<pad> <s> </s> <unk>), trained on ``texts``."""
    from ftscale.data import train_tokenizer

    return train_tokenizer(texts, vocab_size, min_frequency=1)


@pytest.fixture(scope="session")
def corpus() -> dict:
    return make_corpus()


@pytest.fixture(scope="session")
def tokenizer(corpus):
    return make_tokenizer([d for docs in corpus["train"].values() for d in docs])


TINY_RECIPE = {
    "shapes": {
        "tiny-1": {"n_layer": 1, "d_model": 16, "n_head": 2, "d_ff": 32},
        "tiny-2": {"n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64},
    },
    "family": "tiny",
    "vocab_size": 320,
    "tokens": 8 * 4 * 32,
    "seq_len": 32,
    "batch_size": 4,
    "lr": 1e-2,
    "intermediate_members": ["tiny-2"],
    "checkpoint_fractions": [0.25, 0.5, 0.75, 1.0],
    "eval_windows": 4,
    "log_every": 4,
}


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory, corpus, tokenizer):
    """A two-member family pretrained in the test session (a few seconds)."""
    from ftscale.models import pretrain_family

    out = tmp_path_factory.mktemp("fam") / "family"
    pretrain_family(out, TINY_RECIPE, corpus=corpus, tokenizer=tokenizer)
    return out


@pytest.fixture
def tiny_recipe() -> dict:
    import copy

    return copy.deepcopy(TINY_RECIPE)


@pytest.fixture
def make_tok():
    """Build another tokenizer: make_tok(texts, vocab_size)."""
    return make_tokenizer
