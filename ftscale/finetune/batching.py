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
    """Token ids per example and which tokens carry the loss.

    ``n_prompt[i]``: where example i's (last) response starts, so ``ids[i][:n_prompt[i]]`` is
    its generation prompt. ``masks[i]``: a boolean array over ``ids[i]`` for an example whose
    loss tokens are not simply ``[n_prompt, end)`` (several assistant turns), else None.
    ``truncated``: examples cut to ``max_length``; ``template``: the task's template used
    (``ftscale.data.tasks.Task.template_for``)."""

    ids: list[np.ndarray]
    n_prompt: list[int]
    masks: list[np.ndarray | None] | None = None
    truncated: int = 0
    template: str = "task"

    def __len__(self) -> int:
        return len(self.ids)


def _segments(tokenizer: Any, task: Any, ex: Any) -> list[tuple[str, bool, bool]]:
    segments = getattr(task, "segments", None)
    if segments is None:  # a task with a prompt only (test fakes)
        return [(task.prompt(ex), False, False), (ex.target, True, True)]
    return segments(ex, tokenizer)


def _fit(p: list[int], t: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Cut context ``p`` + response ``t`` to ``max_length``: the response keeps up to
    max(room left, max_length / 2) tokens, the context its head and its last few tokens."""
    t = t[: max(max_length - len(p), max_length // 2)]
    room = max_length - len(t)
    if len(p) > room:
        tail = min(_PROMPT_TAIL, room // 2)
        p = p[: room - tail] + (p[-tail:] if tail else [])
    return p, t


def _too_long(ex: Any, n: int, max_length: int) -> Exception:
    from ftscale.errors import UserError

    msg = (
        f"the response is {n} tokens, longer than max_length ({max_length}); raise max_length "
        "or drop the example"
    )
    return ex.error(msg) if hasattr(ex, "error") else UserError(msg)


def encode(tokenizer: Any, task: Any, examples: list, max_length: int) -> Encoded:
    """Tokenise each example's segments (``Task.segments``: prompt and response text, the
    model's chat template where it applies) separately, so the boundaries are exact, into at
    most ``max_length`` tokens: bos + segments (+ eos after each response the template does not
    end itself). The loss is on the responses only (every assistant turn of a chat).

    Too long: the example keeps its last response and the context before it (earlier turns
    are then context, not trained); the response keeps up to max(room left, max_length / 2)
    tokens, the context its head and its last few tokens (``Encoded.truncated`` counts them).
    For a user's task (``task.strict``) a response that alone is longer than ``max_length`` is
    an error naming its file and line; text data (no response) is cut at ``max_length``."""
    segs = [_segments(tokenizer, task, ex) for ex in examples]
    template = task.template_for(tokenizer) if hasattr(task, "template_for") else "task"
    texts = [text for ss in segs for text, _, _ in ss]
    # verbose=False: long documents are cut below, the "longer than max length" warning is moot
    kw = {"add_special_tokens": False, "verbose": False}
    tok = iter(tokenizer(texts, **kw)["input_ids"] if texts else [])
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    strict = getattr(task, "strict", False) and getattr(task, "kind", None) != "text"
    ids, n_prompt, masks, truncated = [], [], [], 0
    for ex, ss in zip(examples, segs, strict=True):
        pieces = [
            (list(next(tok)) + (eos if add_eos else []), trained) for _, trained, add_eos in ss
        ]
        if bos and not (pieces and pieces[0][0][:1] == bos):
            pieces.insert(0, (list(bos), False))
        last = max((i for i, (_, trained) in enumerate(pieces) if trained), default=len(pieces))
        context = [t for piece, _ in pieces[:last] for t in piece]
        response = pieces[last][0] if last < len(pieces) else []
        total = sum(len(piece) for piece, _ in pieces)
        mask = None
        if total > max_length:
            if strict and len(response) > max_length:
                raise _too_long(ex, len(response), max_length)
            truncated += 1
            context, response = _fit(context, response, max_length)
            seq = context + response
        else:
            seq = context + response + [t for piece, _ in pieces[last + 1 :] for t in piece]
            if any(trained for _, trained in pieces[:last]) or last + 1 < len(pieces):
                mask = np.concatenate(
                    [np.full(len(piece), trained, dtype=bool) for piece, trained in pieces]
                )
        ids.append(np.asarray(seq, dtype=np.int64))
        n_prompt.append(len(context))
        masks.append(mask)
    has_masks = any(m is not None for m in masks)
    return Encoded(ids, n_prompt, masks if has_masks else None, truncated, template)


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
        lowest = 1 if prefix_len == 0 else 0
        mask = data.masks[i] if data.masks is not None else None
        if mask is None:
            pos = np.arange(max(data.n_prompt[i], lowest), len(s))
        else:
            pos = np.flatnonzero(mask)
            pos = pos[pos >= lowest]
        idx.append(b * (prefix_len + width) + prefix_len + pos - 1)
        tgt.append(s[pos])
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
