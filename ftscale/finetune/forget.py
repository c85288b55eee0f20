"""Forgetting: what finetuning costs the model's general ability.

As Biderman et al. ("LoRA Learns Less and Forgets Less", TMLR 2024) measure it: the loss on
held-out text of the pretraining distribution, before finetuning (the base model, no adapter)
and after (at the kept best-dev checkpoint, with the adapter, the tuned weights or the soft
prompt applied: the finetuned model as a user would run it). ``forgetting`` = after - before,
nats/token; positive means the model got worse at general text.

The sample is fixed: ``forget_examples`` windows of ``max_length`` consecutive tokens, taken
from the start of each text stream in turn (round-robin), so every run of a study scores the
same tokens and the measurement costs two small evaluations. Every token of a window but the
first is scored (the first has no predecessor without a soft prompt; skipping it with one too
keeps before and after on the same tokens). Text source, in order:

- ``forget_text``: a user's UTF-8 text file (one stream);
- otherwise the embedded monolingual pretraining held-out streams (en, de, zh;
  ``ftscale.data.pretraining``): the family's own held-out text, and general text for any
  other model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ftscale.errors import UserError
from ftscale.finetune.batching import Encoded
from ftscale.models.tokens import windows

#: The embedded held-out streams a forgetting sample is drawn from (monolingual only: the
#: bilingual streams hold translations, close to the translation tasks themselves).
FORGET_STREAMS = ("en", "de", "zh")
#: Documents read per stream at most while filling its windows (more than enough).
_MAX_DOCS = 400


def read_forget_text(path: str) -> str:
    """The text of a ``forget_text`` file; UserError if it is unreadable or blank."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"forget text {path!r} is unreadable: {e.__class__.__name__}") from None
    if not text.strip():
        raise UserError(f"forget text {path!r} is empty")
    return text


def forget_documents(forget_text: str | None) -> dict[str, list[str]]:
    """Documents by stream: ``{"file": [text]}`` for a user's file, else the embedded held-out
    monolingual streams."""
    if forget_text is not None:
        return {"file": [read_forget_text(forget_text)]}
    from ftscale.data.pretraining import load_pretraining

    return load_pretraining("heldout", FORGET_STREAMS)


def _text_windows(tokenizer: Any, docs: list[str], n: int, length: int) -> list[np.ndarray]:
    """``docs`` tokenised (each document followed by EOS where the tokenizer has one), cut by
    :func:`ftscale.models.tokens.windows`: up to ``n`` back-to-back windows of ``length`` tokens
    from the start, a short last window kept if it has at least two tokens."""
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    need = n * length
    ids: list[int] = []
    kw = {"add_special_tokens": False, "verbose": False}
    for start in range(0, min(len(docs), _MAX_DOCS), 16):
        chunk = [d for d in docs[start : start + 16] if d]
        if not chunk:
            continue
        for row in tokenizer(chunk, **kw)["input_ids"]:
            ids.extend(row)
            ids.extend(eos)
        if len(ids) >= need:
            break
    return windows(np.asarray(ids[:need], dtype=np.int64), n, length)


def forget_sample(
    tokenizer: Any, n_examples: int, max_length: int, forget_text: str | None = None
) -> Encoded:
    """The fixed forgetting sample: ``n_examples`` windows of ``max_length`` tokens, shared
    round-robin among the streams of :func:`forget_documents`. Returned as an
    :class:`~ftscale.finetune.batching.Encoded` whose "prompt" is each window's first token
    (scored: all the others). UserError if the text gives no window at all."""
    streams = forget_documents(forget_text)
    names = sorted(streams)
    per = [n_examples // len(names) + (i < n_examples % len(names)) for i in range(len(names))]
    ids: list[np.ndarray] = []
    for name, k in zip(names, per, strict=True):
        if k:
            ids += _text_windows(tokenizer, streams[name], k, max_length)
    if not ids:
        raise UserError("the forgetting text is too short for one window of two tokens")
    return Encoded(ids, [1] * len(ids))
