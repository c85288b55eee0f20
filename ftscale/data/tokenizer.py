"""The project's shared BPE tokenizer (Hugging Face ``tokenizers``), trained on pretraining text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ftscale.errors import UserError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")


def train_tokenizer(
    texts: Iterable[str],
    vocab_size: int,
    *,
    min_frequency: int = 2,
    model_max_length: int = 256,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE with ``vocab_size`` tokens (specials and the 256 bytes included).

    Byte level means every string encodes, whatever its script (the byte fallback): a character
    the merges never saw becomes its UTF-8 bytes. ``model_max_length`` is in tokens. Training
    is deterministic for the same texts in the same order.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    n_min = len(SPECIAL_TOKENS) + 256
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= n_min:
        raise UserError(f"vocab_size must be an integer above {n_min}, got {vocab_size!r}")
    texts = [t for t in texts if t]
    if not texts:
        raise UserError("no text to train the tokenizer on")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=model_max_length,
    )
