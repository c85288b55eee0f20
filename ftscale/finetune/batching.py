"""Encoding and batching, host side (numpy): what "a batch" is for the finetuning loop.

A batch is a right-padded id tensor plus the flat positions of the target tokens: the loss is on
the target only, and only target positions go through the output head. Right padding needs no
attention mask (the model is causal: pads at the end of a row cannot change the real positions'
outputs). Training batches are length-bucketed (sorted within shuffled chunks), so little
compute goes to padding (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# Prompt tokens kept from the end when a long prompt is cut in the middle: a task prompt often
# ends with a separator ("German:") that tells the model where the target starts.
_PROMPT_TAIL = 8


@dataclass
class Encoded:
    """Token ids of prompt + target (+ eos) per example, and where the target starts."""

    ids: list[np.ndarray]
    n_prompt: list[int]

    def __len__(self) -> int:
        return len(self.ids)


def encode(tokenizer: Any, task: Any, examples: list, max_length: int) -> Encoded:
    """Tokenise ``task.prompt(ex)`` and ``ex.target`` separately (the boundary is exact) into at
    most ``max_length`` tokens: bos + prompt + target + eos. Too long: the target keeps up to
    max(room left, max_length / 2) tokens, the prompt keeps its head and its last few tokens."""
    prompts = [task.prompt(ex) for ex in examples]
    targets = [ex.target for ex in examples]
    # verbose=False: long documents are cut below, the "longer than max length" warning is moot
    kw = {"add_special_tokens": False, "verbose": False}
    p_ids = tokenizer(prompts, **kw)["input_ids"] if prompts else []
    t_ids = tokenizer(targets, **kw)["input_ids"] if targets else []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids, n_prompt = [], []
    for p, t in zip(p_ids, t_ids, strict=True):
        p = bos + list(p)
        t = list(t) + eos
        if len(p) + len(t) > max_length:
            t = t[: max(max_length - len(p), max_length // 2)]
            room = max_length - len(t)
            if len(p) > room:
                tail = min(_PROMPT_TAIL, room // 2)
                p = p[: room - tail] + (p[-tail:] if tail else [])
        ids.append(np.asarray(p + t, dtype=np.int64))
        n_prompt.append(len(p))
    return Encoded(ids, n_prompt)


@dataclass
class Batch:
    """A right-padded batch. ``tgt_idx``: flat positions (into [B, prefix + L]) whose hidden state
    predicts a target token; ``tgt_ids``: those tokens. Counts are host ints (no device sync)."""

    input_ids: Any
    tgt_idx: Any
    tgt_ids: Any
    n_tokens: int  # real (non-pad) tokens in the batch, soft prompt excluded
    n_target: int

    def to(self, device: Any) -> Batch:
        if device.type != "cuda":
            return self

        # from pinned memory a copy is truly asynchronous; from pageable memory CUDA would
        # synchronise the stream first, i.e. a host sync every step
        def move(t: Any) -> Any:
            return t.pin_memory().to(device, non_blocking=True)

        return Batch(
            move(self.input_ids),
            move(self.tgt_idx),
            move(self.tgt_ids),
            self.n_tokens,
            self.n_target,
        )


def make_batch(data: Encoded, rows: list[int] | np.ndarray, prefix_len: int, pad_id: int) -> Batch:
    """Pad the examples ``rows`` of ``data`` to their longest; mark target positions."""
    import torch

    seqs = [data.ids[i] for i in rows]
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    idx, tgt = [], []
    for b, i in enumerate(rows):
        s = seqs[b]
        ids[b, : len(s)] = s
        # the hidden state at position j-1 predicts token j; with no bos and no prefix the first
        # token has no predecessor and is not scored
        first = max(data.n_prompt[i], 1 if prefix_len == 0 else 0)
        pos = np.arange(first, len(s))
        idx.append(b * (prefix_len + width) + prefix_len + pos - 1)
        tgt.append(s[first:])
    tgt_idx = np.concatenate(idx)
    return Batch(
        torch.from_numpy(ids),
        torch.from_numpy(tgt_idx),
        torch.from_numpy(np.concatenate(tgt)),
        int(sum(len(s) for s in seqs)),
        int(len(tgt_idx)),
    )


def eval_batches(data: Encoded, batch_size: int, prefix_len: int, pad_id: int) -> list[Batch]:
    """Batches of similar length (sorted), for evaluation; order does not matter there."""
    order = np.argsort([len(s) for s in data.ids], kind="stable")
    return [
        make_batch(data, order[i : i + batch_size], prefix_len, pad_id)
        for i in range(0, len(order), batch_size)
    ]


def train_batches(
    data: Encoded, batch_size: int, prefix_len: int, pad_id: int, rng: np.random.Generator
) -> Iterator[Batch]:
    """Endless length-bucketed batches: each epoch shuffles, sorts by length within chunks of
    50 batches, and shuffles the batch order, so padding is small and order stays random."""
    n = len(data)
    chunk = 50 * batch_size
    lengths = np.array([len(s) for s in data.ids])
    while True:
        perm = rng.permutation(n)
        groups = []
        for c in range(0, n, chunk):
            part = perm[c : c + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            groups += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
        for g in rng.permutation(len(groups)):
            yield make_batch(data, groups[g], prefix_len, pad_id)
