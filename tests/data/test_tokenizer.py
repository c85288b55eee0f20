"""The shared BPE tokenizer."""

from __future__ import annotations

import pytest

from ftscale.data import load_pretraining, train_tokenizer
from ftscale.errors import UserError

TEXTS = [
    "The cell is selected. Die Zelle ist ausgewählt. 单元格已选中。",
    "Click the button to open the dialog. Klicken Sie auf die Schaltfläche. 单击按钮打开对话框。",
] * 50


def test_vocab_size_roundtrip_and_any_text_encodes():
    tok = train_tokenizer(TEXTS, vocab_size=300)
    assert len(tok) <= 300
    for text in ("Die Zelle", "單元格 ✓ 🚀 ŋ", "שלום", "x" * 3):
        ids = tok(text)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == text
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>" and tok.bos_token == "<s>"


def test_training_is_deterministic():
    a = train_tokenizer(TEXTS, vocab_size=320)
    b = train_tokenizer(TEXTS, vocab_size=320)
    assert a.get_vocab() == b.get_vocab()


def test_bad_arguments():
    with pytest.raises(UserError, match="vocab_size"):
        train_tokenizer(TEXTS, vocab_size=100)
    with pytest.raises(UserError, match="no text"):
        train_tokenizer(["", ""], vocab_size=400)


def test_trained_on_shipped_text_saves_and_reloads(tmp_path):
    from transformers import PreTrainedTokenizerFast

    heldout = load_pretraining("heldout")
    texts = [d for docs in heldout.values() for d in docs]
    tok = train_tokenizer(texts, vocab_size=2048)
    tok.save_pretrained(tmp_path)
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    sample = heldout["en-zh"][0]
    assert again(sample)["input_ids"] == tok(sample)["input_ids"]
    # A trained vocabulary compresses: well under one token per byte on its own text.
    assert len(tok(sample)["input_ids"]) < 0.5 * len(sample.encode())
