"""Evaluation of a finetuned model: target loss over fixed samples, batched KV-cached greedy
decoding, and the generation metrics of a decoded sample."""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.finetune.batching import Batch, encode
from ftscale.finetune.runner import Runner
from ftscale.models.training import mean_token_nll


def evaluate(runner: Runner, batches: list[Batch]) -> float:
    """Token-level NLL of the targets over all ``batches``, nats/token (one host sync)."""
    dev = runner.device
    return mean_token_nll(
        runner.model, batches, lambda b: (runner.loss(b.to(dev), reduction="sum"), b.n_target), dev
    )


def greedy_decode(
    runner: Runner,
    prompts: list[np.ndarray],
    eos_id: int | None,
    pad_id: int,
    max_new_tokens: list[int] | int,
    batch_size: int,
) -> list[list[int]]:
    """Greedy continuations of ``prompts`` (token ids), batched with left padding and a KV cache.

    ``max_new_tokens``: a cap per prompt (or one for all). Generation of a batch stops when every
    row has produced ``eos_id`` or reached its cap. Returns the new ids (eos excluded).
    """
    import torch

    caps = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else max_new_tokens
    model = runner.model
    was_training = model.training
    model.eval()
    prefix = 0 if runner.prefix is None else runner.prefix.shape[0]
    order = np.argsort([len(p) for p in prompts], kind="stable")
    out: list[list[int]] = [[] for _ in prompts]
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            rows = order[s : s + batch_size]
            width = max(len(prompts[i]) for i in rows)
            ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(rows), prefix + width), dtype=np.int64)
            for b, i in enumerate(rows):
                p = prompts[i]
                ids[b, width - len(p) :] = p
                # layout [pads][soft prompt][prompt]: the soft prompt sits right before the text,
                # at positions 0..P-1 as in training
                mask[b, width - len(p) :] = 1
            ids_t = torch.from_numpy(ids).to(runner.device)
            emb = runner.embed(ids_t)
            if runner.prefix is not None:
                pads = emb.shape[1] - np.array([len(prompts[i]) for i in rows])
                pre = runner.prefix.to(emb.dtype)
                full = emb.new_zeros(len(rows), prefix + width, emb.shape[-1])
                for b in range(len(rows)):
                    pd = int(pads[b])
                    full[b, pd : pd + prefix] = pre
                    full[b, pd + prefix :] = emb[b, pd:]
                    mask[b, pd : pd + prefix] = 1
                emb = full
            mask_t = torch.from_numpy(mask).to(runner.device)
            pos = (mask_t.cumsum(-1) - 1).clamp(min=0)
            logits, cache = runner.step_logits(emb, mask_t, pos, None)
            cap = max(caps[i] for i in rows)
            done = torch.zeros(len(rows), dtype=torch.bool, device=runner.device)
            row_caps = torch.tensor([caps[i] for i in rows], device=runner.device)
            new = []
            last = pos[:, -1:]
            for t in range(cap):
                nxt = logits.argmax(-1)
                if eos_id is not None:
                    done |= nxt == eos_id
                done |= row_caps <= t
                new.append(torch.where(done, -1, nxt))
                if bool(done.all()):
                    break
                mask_t = torch.cat([mask_t, torch.ones_like(mask_t[:, :1])], dim=1)
                last = last + 1
                logits, cache = runner.step_logits(runner.embed(nxt[:, None]), mask_t, last, cache)
            gen = torch.stack(new, 1).cpu().numpy()
            for b, i in enumerate(rows):
                row = gen[b]
                out[i] = [int(x) for x in row[row >= 0]]
    model.train(was_training)
    return out


def decode_hypotheses(
    runner: Runner,
    tokenizer: Any,
    task: Any,
    examples: list,
    *,
    max_length: int,
    max_new_tokens: int,
    batch_size: int,
    pad_id: int,
    first_line: bool = False,
) -> list[str]:
    """Greedy continuations (text) of ``task.prompt(ex)`` for each example; ``first_line`` keeps
    only the first line (a demonstration-following model stops at the blank line between
    examples)."""
    enc = encode(tokenizer, task, examples, max_length)
    prompts = [ids[:n] for ids, n in zip(enc.ids, enc.n_prompt, strict=True)]
    # cap each output at twice its reference length (+8): an untrained model that never says
    # eos would otherwise cost max_new_tokens steps; the cap never shortens a plausible output
    caps = [
        min(max_new_tokens, 2 * (len(ids) - n) + 8)
        for ids, n in zip(enc.ids, enc.n_prompt, strict=True)
    ]
    out = greedy_decode(runner, prompts, tokenizer.eos_token_id, pad_id, caps, batch_size)
    if enc.template == "chat":  # a chat template's end-of-turn token ends the response too
        stops = set(getattr(tokenizer, "all_special_ids", []) or [])
        out = [_until(o, stops) for o in out]
    texts = [tokenizer.decode(o, skip_special_tokens=True) for o in out]
    return [(t.split("\n")[0] if first_line else t).strip() for t in texts]


def _until(ids: Any, stops: set[int]) -> list[int]:
    """``ids`` up to (without) the first of ``stops``."""
    ids = [int(i) for i in ids]
    for k, i in enumerate(ids):
        if i in stops:
            return ids[:k]
    return ids


def decode_quality(
    runner: Runner, tokenizer: Any, task: Any, examples: list, **decode: Any
) -> dict[str, Any]:
    """Greedy-decode ``examples`` (``decode``: the keywords of :func:`decode_hypotheses`) and
    score them with the task's metrics (BLEU/chrF or ROUGE-L, with their signatures)."""
    from ftscale.finetune.metrics import quality

    hyps = decode_hypotheses(runner, tokenizer, task, examples, **decode)
    metrics = getattr(task, "metric", ("bleu", "chrf"))
    return quality(metrics, hyps, [ex.target for ex in examples], [ex.lang for ex in examples])
