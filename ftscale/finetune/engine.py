"""One finetuning run, in plain sight: encode, batch, loop, evaluate, decode, record.

The loop is deliberately explicit (nanoGPT-style): a batch is a padded id tensor plus the flat
positions of the target tokens, a step is forward / backward / clip / optimiser. Choices that
make it fast, each measured in docs/performance.md:

- Loss on the target only, and only target positions go through the output head: the hidden
  states of prompt and source tokens are never multiplied by the vocabulary matrix.
- Right padding without an attention mask: the model is causal, so pad tokens at the end of a
  row cannot change the real positions' outputs; attention runs on the plain causal fast path.
- Length-bucketed batches (sorted within shuffled chunks), so little compute goes to padding.
- Fixed, small dev/test samples, batched evaluation, early stopping with a patience, and a
  KV-cached batched greedy decoder on a small fixed sample for BLEU/chrF/ROUGE-L.
- On CUDA: bf16 autocast, fused AdamW, losses kept on the device (checked for NaN/inf only at
  evaluation points), pinned host batches copied without blocking, optional torch.compile, and
  no operator in a step that reads device memory back (tests/finetune/test_gpu_path.py).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import inspect
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ftscale import __version__
from ftscale.errors import UserError
from ftscale.finetune.config import FinetuneConfig, budget_steps, validate
from ftscale.finetune.methods import METHODS, Adapted
from ftscale.finetune.transfer import (
    TRANSFER_MAX_LENGTH,
    evaluate_transfer,
    merge_transfer,
    related_tasks,
)
from ftscale.schema import ALL_COLUMNS

# Prompt tokens kept from the end when a long prompt is cut in the middle: a task prompt often
# ends with a separator ("German:") that tells the model where the target starts.
_PROMPT_TAIL = 8


# ----------------------------------------------------------------------------------------------
# encoding and batching (host side, numpy)


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


# ----------------------------------------------------------------------------------------------
# the model side


def _cache_keyword(module: Any) -> str:
    """The KV-cache keyword of ``module.forward``: transformers 5 says ``cache``, 4.x
    ``past_key_values``."""
    params = inspect.signature(module.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _out_cache(out: Any) -> Any:
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


class Runner:
    """Forward passes of an adapted model: target-position logits for training/evaluation, and
    one greedy decoding step with a KV cache.

    Uses decoder + output head directly (so only target positions meet the vocabulary matrix)
    when a one-off check shows that reproduces the model's own logits; any other causal LM
    (soft-capped logits, custom heads) goes through its full forward instead.
    """

    def __init__(
        self, adapted: Adapted, device: Any, compile: bool = False, precision: str = "auto"
    ):
        import torch

        self.model = adapted.model
        self.prefix = adapted.prefix
        self.device = device
        self.embed = self.model.get_input_embeddings()
        self.autocast = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
            if autocast_bf16(device, precision)
            else contextlib.nullcontext
        )
        self.decoder, self.head = self._split_head()
        self.train_decoder = self.decoder
        if compile and self.decoder is not None:
            self.train_decoder = torch.compile(self.decoder, dynamic=True)
        target = self.decoder if self.decoder is not None else self.model
        self.cache_kw = _cache_keyword(target)
        # A soft prompt's hidden states never see the text (causal attention), so they are the
        # same for every row: compute them once per step (batch 1) and give the rows their
        # keys/values as a cache. Linear-layer work drops from B (P + L) to P + B L positions.
        self.prefix_cache = (
            self.prefix is not None and self.decoder is not None and not compile
        ) and self._prefix_cache_works()
        #: soft-prompt positions in a batch's layout (0 when the prefix runs separately)
        self.layout_prefix = 0 if self.prefix is None or self.prefix_cache else self.prefix.shape[0]
        # Without a mask and without a cache, transformers' mask code checks the position ids
        # for packed sequences, reading a flag back from the device on every forward (a host
        # sync per step on CUDA). With an empty cache it takes the causal fast path unread.
        self.empty_cache = self._empty_cache_works()

    def _probe_ids(self, n: int, rows: int) -> Any:
        """Token ids [rows, n] (1..n, within the vocabulary) for the one-off checks."""
        import torch

        ids = torch.arange(1, n + 1, device=self.device).remainder(self.embed.num_embeddings)
        return ids[None].expand(rows, -1)

    @contextlib.contextmanager
    def _eval_no_grad(self) -> Iterator[None]:
        """The model in eval mode without gradients, its training flag restored after."""
        import torch

        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.model.train(was_training)

    def _split_head(self) -> tuple[Any, Any]:
        import torch

        get_dec = getattr(self.model, "get_decoder", None)
        head = self.model.get_output_embeddings()
        if get_dec is None or head is None:
            return None, None
        decoder = get_dec()
        if decoder is None or decoder is self.model:
            return None, None
        ids = self._probe_ids(5, 1)
        with self._eval_no_grad():
            full = self.model(input_ids=ids, use_cache=False).logits.float()
            split = head(decoder(input_ids=ids, use_cache=False).last_hidden_state).float()
        if full.shape == split.shape and torch.allclose(full, split, rtol=1e-4, atol=1e-4):
            return decoder, head
        return None, None

    def _prefix_cache_works(self) -> bool:
        """Check once that running the prefix separately reproduces the concatenated forward."""
        import torch

        ids = self._probe_ids(3, 2)
        try:
            with self._eval_no_grad():
                emb = self.embed(ids)
                p = self.prefix.shape[0]
                cat = torch.cat([self.prefix.to(emb.dtype)[None].expand(2, -1, -1), emb], 1)
                ref = self.decoder(inputs_embeds=cat, use_cache=False).last_hidden_state[:, p:]
                got = self._text_hidden_with_prefix_cache(self.decoder, emb)
            ok = ref.shape == got.shape and torch.allclose(ref, got, rtol=1e-4, atol=1e-4)
        except Exception:  # noqa: BLE001 - a cache API this transformers lacks: concatenate
            ok = False
        return bool(ok)

    def _text_hidden_with_prefix_cache(self, decoder: Any, emb: Any) -> Any:
        """Hidden states [B, L, d] of the text after the soft prompt, prefix run once."""
        import torch

        p = self.prefix.shape[0]
        out = decoder(inputs_embeds=self.prefix.to(emb.dtype)[None], use_cache=True)
        cache = _out_cache(out)
        cache.batch_repeat_interleave(emb.shape[0])  # differentiable copy to every row
        pos = torch.arange(p, p + emb.shape[1], device=emb.device)[None].expand(emb.shape[0], -1)
        kwargs = {self.cache_kw: cache}
        return decoder(
            inputs_embeds=emb, position_ids=pos, use_cache=True, **kwargs
        ).last_hidden_state

    def _no_cache_kwargs(self) -> dict[str, Any]:
        """Keywords of a plain causal forward over whole rows (no prefix cache)."""
        if not self.empty_cache:
            return {"use_cache": False}
        from transformers import DynamicCache

        return {"use_cache": True, self.cache_kw: DynamicCache()}

    def _empty_cache_works(self) -> bool:
        """Check once that a forward with an empty cache gives the plain forward's output."""
        import torch

        target = self.decoder if self.decoder is not None else self.model
        ids = self._probe_ids(5, 2)
        try:
            from transformers import DynamicCache

            with self._eval_no_grad():
                emb = self._inputs_embeds(ids)
                ref = target(inputs_embeds=emb, use_cache=False)[0]
                got = target(inputs_embeds=emb, use_cache=True, **{self.cache_kw: DynamicCache()})
            ok = ref.shape == got[0].shape and torch.allclose(ref, got[0], rtol=1e-5, atol=1e-5)
        except Exception:  # noqa: BLE001 - a model or transformers without this cache API
            ok = False
        return bool(ok)

    def _inputs_embeds(self, input_ids: Any) -> Any:
        import torch

        emb = self.embed(input_ids)
        if self.prefix is not None:
            pre = self.prefix.to(emb.dtype).unsqueeze(0).expand(emb.shape[0], -1, -1)
            emb = torch.cat([pre, emb], dim=1)
        return emb

    def target_logits(self, batch: Batch, train: bool = False) -> Any:
        """Logits [n_target, vocab] at the positions that predict target tokens."""
        if self.prefix_cache:
            with self.autocast():
                h = self._text_hidden_with_prefix_cache(self.decoder, self.embed(batch.input_ids))
                h = h.reshape(-1, h.shape[-1]).index_select(0, batch.tgt_idx)
                return self.head(h)
        emb = self._inputs_embeds(batch.input_ids)
        with self.autocast():
            if self.decoder is not None:
                dec = self.train_decoder if train else self.decoder
                # a compiled decoder traces the mask code (no host read there): no cache
                kw = {"use_cache": False} if dec is not self.decoder else self._no_cache_kwargs()
                h = dec(inputs_embeds=emb, **kw).last_hidden_state
                h = h.reshape(-1, h.shape[-1]).index_select(0, batch.tgt_idx)
                return self.head(h)
            logits = self.model(inputs_embeds=emb, **self._no_cache_kwargs()).logits
            return logits.reshape(-1, logits.shape[-1]).index_select(0, batch.tgt_idx)

    def loss(self, batch: Batch, train: bool = False, reduction: str = "mean") -> Any:
        """Token-level NLL of the target tokens (nats/token for "mean", nats for "sum")."""
        import torch.nn.functional as F

        logits = self.target_logits(batch, train=train)
        return F.cross_entropy(logits.float(), batch.tgt_ids, reduction=reduction)

    def step_logits(self, emb: Any, mask: Any, pos: Any, cache: Any) -> tuple[Any, Any]:
        """One cached forward; returns the last position's logits and the cache."""
        kwargs = {
            "inputs_embeds": emb,
            "attention_mask": mask,
            "position_ids": pos,
            "use_cache": True,
            self.cache_kw: cache,
        }
        with self.autocast():
            if self.decoder is not None:
                out = self.decoder(**kwargs)
                return self.head(out.last_hidden_state[:, -1]).float(), _out_cache(out)
            out = self.model(**kwargs)
            return out.logits[:, -1].float(), _out_cache(out)


def autocast_bf16(device: Any, precision: str) -> bool:
    """Whether forward passes run under bf16 autocast: ``precision`` "bf16" always, "fp32"
    never, "auto" on CUDA only (on this project's 2-core CPU, bf16 autocast trained ftlm-3 at
    0.11x the fp32 speed: 1,450 vs 13,230 tokens/s, full tuning, batch 16, one thread)."""
    if precision == "auto":
        return device.type == "cuda"
    return precision == "bf16"


def train_step(runner: Runner, batch: Batch, opt: Any, params: list, grad_clip: float) -> Any:
    """One optimiser step on ``batch``: forward, backward, clip, update, zero the gradients.

    Returns the batch's mean target loss as a detached device tensor, never a Python number:
    nothing here reads a value back to the host (no ``.item()``, no data-dependent shapes), so
    on CUDA the host queues step after step without waiting for the device. Tested on the CPU
    by recording every operator a step dispatches (tests/finetune/test_gpu_path.py).
    """
    import torch

    loss = runner.loss(batch.to(runner.device), train=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def nan_check_every(device: Any, eval_every: int) -> int:
    """Steps between NaN/inf checks of the training losses: every step on the CPU (a check costs
    nothing there and a diverged run stops at once), only at evaluation points (every
    ``eval_every`` steps, 50 if 0) on CUDA, where reading a flag back is a host-device sync."""
    return 1 if device.type == "cpu" else (eval_every or 50)


def evaluate(runner: Runner, batches: list[Batch]) -> float:
    """Token-level NLL of the targets over all ``batches``, nats/token (one host sync)."""
    import torch

    model = runner.model
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=runner.device)
    count = 0
    with torch.no_grad():
        for b in batches:
            total += runner.loss(b.to(runner.device), reduction="sum").double()
            count += b.n_target
    model.train(was_training)
    return float(total.item()) / max(count, 1)


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


# ----------------------------------------------------------------------------------------------
# loading, memory, optimiser, schedule


def _load_task(name: str) -> Any:
    from ftscale.data import get_task

    return get_task(name)


def _load_model(name: str) -> tuple[Any, Any, Any]:
    """(model, tokenizer, ModelInfo) on the CPU: a family member, a local Hugging Face causal-LM
    folder or a GGUF file, through ``ftscale.models.load_model`` (unknown name: UserError)."""
    from ftscale.models import load_model

    return load_model(name)


def _model_info(name: str) -> Any:
    from ftscale.models import model_info

    return model_info(name)


def _device(name: str) -> Any:
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available here")
    return torch.device(name)


def available_memory(device: Any) -> int:
    """Bytes the run may use: free GPU memory, or the kernel's MemAvailable on the CPU."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_train_bytes(model: Any, trainable: int, config: FinetuneConfig, prefix: int) -> int:
    """Rough peak bytes of training: weights, grads + AdamW moments + best copy of the
    trainable parameters, activations (~34 hidden-size values per layer and token, the usual
    transformer estimate) and target logits. An order-of-magnitude guard, not an accounting."""
    cfg = model.config
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    tokens = config.batch_size * (config.max_length + prefix)
    act = tokens * layers * hidden * 34 * 4
    logits = config.batch_size * config.max_length * vocab * 4 * 3
    return int(weights + trainable * 4 * 4 + act + logits)


def _optimizer(params: list, config: FinetuneConfig, lr: float, device: Any) -> Any:
    import torch

    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            params,
            lr=lr,
            scale_parameter=False,
            relative_step=False,
            warmup_init=False,
            weight_decay=config.weight_decay,
        )
    kw = {"fused": True} if device.type == "cuda" else {"foreach": True}
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay, **kw)


def lr_at(step: int, total: int, lr: float, warmup: float, min_ratio: float) -> float:
    """Learning rate at optimiser step ``step`` (1-based): linear warm-up over the first
    ``warmup`` fraction of ``total`` steps, then cosine down to ``lr * min_ratio``."""
    w = int(round(warmup * total))
    if step <= w:
        return lr * step / w
    frac = (step - w) / max(1, total - w)
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def _peak_mem(device: Any) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def _count(model: Any) -> tuple[int, int]:
    """(all parameters, non-embedding parameters) of the base model; tied tensors count once."""
    total = sum(p.numel() for p in model.parameters())
    seen = {id(p) for p in model.parameters()}
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    embed = emb.numel()
    if out is not None and out.weight is not emb and id(out.weight) in seen:
        embed += out.weight.numel()
    return total, total - embed


def _sync(device: Any) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------
# the run


def run_finetune(
    config: FinetuneConfig | dict,
    *,
    model: Any = None,
    tokenizer: Any = None,
    task: Any = None,
    info: Any = None,
) -> dict[str, Any]:
    """Run one finetuning run and return its record (one row of the results table).

    ``config``: a :class:`FinetuneConfig` or a dict of its fields. ``model``/``tokenizer``/
    ``task``/``info`` may be given directly (a deep copy of ``model`` is trained, the caller's
    stays untouched); otherwise they are loaded by name through ``ftscale.models`` and
    ``ftscale.data``. Bad input raises :class:`UserError` before any training.

    Record: the schema's columns (losses in nats/token of the target, sizes in parameters /
    examples / tokens, ``train_seconds`` in seconds, ``peak_mem_bytes`` in bytes, ``flops``
    estimated as (6 N for full tuning, 4 N + 6 trainable for PET) per training token, N the base
    model's parameters), plus ``status`` ("done" or "diverged"), quality metrics with their
    signatures, and the run's configuration. A diverged run has null losses and metrics.
    """
    t_start = time.perf_counter()
    if isinstance(config, dict):
        known = set(FinetuneConfig.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise UserError(f"unknown finetuning option(s): {', '.join(unknown)}")
        config = FinetuneConfig(**config)
    validate(config)
    import torch

    device = _device(config.device)
    if device.type == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    method = METHODS[config.method]
    pet_size = getattr(config, method.pet_size_field) if method.pet_size_field else None
    if method.pet_size_field and pet_size is None:
        pet_size = method.default_pet_size
    lr = config.lr if config.lr is not None else method.default_lr

    # --- data: check sizes before loading any model
    task = task if task is not None else _load_task(config.task)
    n_train = len(task.split("train"))
    if config.data_size > n_train:
        raise UserError(
            f"data size {config.data_size} exceeds the {n_train} training examples of "
            f"task {getattr(task, 'name', config.task)!r}"
        )
    train_ex = task.subset(config.data_size, config.seed)
    dev_ex = task.split("dev")[: config.dev_examples]
    test_ex = task.split("test")[: config.test_examples]
    if not dev_ex or not test_ex:
        raise UserError(f"task {config.task!r} has an empty dev or test split")

    phases = {"setup": 0.0, "zero_shot": 0.0, "train": 0.0, "dev_eval": 0.0}
    # --- model
    if model is None:
        # refuse a model too large for the device before reading gigabytes of weights: fp32
        # weights, plus gradients and two AdamW moments when every weight trains
        size = _model_info(config.model).model_size
        _check_memory(size * 4 * (4 if config.method == "fmt" else 1), device, config)
        model, tokenizer, info = _load_model(config.model)
    else:
        if tokenizer is None:
            raise UserError("a model given directly needs its tokenizer")
        model = copy.deepcopy(model)
    model.to(torch.float32)
    model_size, nonembed = _count(model)
    if info is not None:
        model_size = int(getattr(info, "model_size", None) or model_size)
        nonembed = int(getattr(info, "model_size_nonembed", None) or nonembed)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    train = encode(tokenizer, task, train_ex, config.max_length)
    dev = encode(tokenizer, task, dev_ex, config.max_length)
    test = encode(tokenizer, task, test_ex, config.max_length)

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    # --- zero-shot loss of the base model (before any adapter is added)
    eval_bs = 2 * config.batch_size
    zero_shot = None
    if config.zero_shot:
        needed = estimate_train_bytes(model, 0, config, 0)
        _check_memory(needed, device, config)
        model.to(device)
        base = Runner(Adapted(model, None, [], 0), device, precision=config.precision)
        t = time.perf_counter()
        zero_shot = evaluate(base, eval_batches(test, eval_bs, 0, pad_id))
        phases["zero_shot"] = time.perf_counter() - t

    transfer_tasks: list[str] = []
    base_transfer = None
    if config.transfer:
        transfer_tasks = config.transfer_tasks or related_tasks(getattr(task, "name", config.task))
        model.to(device)
        t = time.perf_counter()
        base_transfer = _transfer(
            Runner(Adapted(model, None, [], 0), device, precision=config.precision),
            tokenizer,
            transfer_tasks,
            config,
            pad_id,
        )
        phases["transfer"] = time.perf_counter() - t

    adapted = method.apply(model, tokenizer, pet_size, gen)
    model = adapted.model
    prefix_len = 0 if adapted.prefix is None else int(adapted.prefix.shape[0])
    trainable = int(sum(p.numel() for p in adapted.trainable))
    _check_memory(estimate_train_bytes(model, trainable, config, prefix_len), device, config)
    model.to(device)
    if adapted.prefix is not None:
        adapted.prefix.data = adapted.prefix.data.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runner = Runner(adapted, device, compile=config.compile, precision=config.precision)
    layout = runner.layout_prefix
    dev_b = eval_batches(dev, eval_bs, layout, pad_id)
    test_b = eval_batches(test, eval_bs, layout, pad_id)
    batches = train_batches(train, config.batch_size, layout, pad_id, rng)

    total = budget_steps(config)
    phases["setup"] = (
        time.perf_counter() - t_start - phases["zero_shot"] - phases.get("transfer", 0.0)
    )
    opt = _optimizer(adapted.trainable, config, lr, device)
    params = adapted.trainable
    losses = torch.full((total,), float("nan"), device=device)
    check_every = nan_check_every(device, config.eval_every)
    eval_every = config.eval_every or total

    best_dev, best_step, best_state = math.inf, 0, None
    bad_evals, diverged_step, step = 0, None, 0
    train_tokens = 0
    model.train()
    _sync(device)
    seg_start = time.perf_counter()
    for step in range(1, total + 1):
        cur = lr_at(step, total, lr, config.warmup, config.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = cur
        b = next(batches)
        losses[step - 1] = train_step(runner, b, opt, params, config.grad_clip)
        train_tokens += b.n_tokens
        at_eval = step % eval_every == 0 or step == total
        if step % check_every == 0 or at_eval:
            finite = torch.isfinite(losses[:step])
            if not bool(finite.all()):
                diverged_step = int((~finite).nonzero()[0, 0]) + 1
                break
        if at_eval:
            _sync(device)
            phases["train"] += time.perf_counter() - seg_start
            t = time.perf_counter()
            dev_loss = evaluate(runner, dev_b)
            phases["dev_eval"] += time.perf_counter() - t
            seg_start = time.perf_counter()
            if not math.isfinite(dev_loss):
                diverged_step = step
                break
            if dev_loss < best_dev:
                best_dev, best_step, bad_evals = dev_loss, step, 0
                best_state = [p.detach().clone() for p in params]
            else:
                bad_evals += 1
                if config.patience and bad_evals >= config.patience:
                    break
    _sync(device)
    phases["train"] += time.perf_counter() - seg_start
    train_time = phases["train"]

    record: dict[str, Any] = {c: None for c in ALL_COLUMNS}
    record.update(
        task=getattr(task, "name", config.task),
        method=config.method,
        model=getattr(info, "name", None) or config.model,
        model_size=model_size,
        model_size_nonembed=nonembed,
        pretrain_tokens=getattr(info, "pretrain_tokens", None),
        pet_size=pet_size,
        pet_params=adapted.pet_params,
        data_size=config.data_size,
        seed=config.seed,
        trainable_params=trainable,
        zero_shot_loss=zero_shot,
        steps=diverged_step or step,
        diverged_step=diverged_step,
        tokens_per_second=train_tokens / train_time if train_time > 0 else None,
        flops=float(
            (6 * model_size if config.method == "fmt" else 4 * model_size + 6 * trainable)
            * train_tokens
        ),
    )
    if diverged_step is not None:
        record.update(status="diverged", loss=None, dev_loss=None, best_step=None)
    else:
        with torch.no_grad():
            for p, s in zip(params, best_state, strict=True):
                p.copy_(s)
        record.update(status="done", dev_loss=best_dev, best_step=best_step)
        t = time.perf_counter()
        record["loss"] = evaluate(runner, test_b)
        phases["test_eval"] = time.perf_counter() - t
        if not math.isfinite(record["loss"]):  # finite dev, overflowing test: still no result
            record.update(status="diverged", loss=None, dev_loss=None, diverged_step=best_step)
        else:
            if config.decode_examples:
                t = time.perf_counter()
                record.update(_quality(runner, tokenizer, task, test_ex, config, pad_id))
                phases["decode"] = time.perf_counter() - t
            if config.transfer:
                t = time.perf_counter()
                tuned = _transfer(runner, tokenizer, transfer_tasks, config, pad_id)
                record["transfer"] = merge_transfer(base_transfer, tuned)
                phases["transfer"] += time.perf_counter() - t
    record["train_seconds"] = time.perf_counter() - t_start
    record["seconds_by_phase"] = {k: round(v, 4) for k, v in phases.items()}
    record["peak_mem_bytes"] = _peak_mem(device)
    data_hash = task.data_hash("train") if hasattr(task, "data_hash") else None
    cfg = config.to_dict()
    key_src = {k: v for k, v in cfg.items() if k not in ("device", "threads", "compile")}
    record.update(
        lr=lr,
        device=str(device),
        code_version=__version__,
        data_hash=data_hash,
        run_key=hashlib.sha256(
            json.dumps([key_src, data_hash, __version__], sort_keys=True, default=str).encode()
        ).hexdigest()[:16],
        config=cfg,
    )
    return record


def _transfer(
    runner: Runner, tokenizer: Any, tasks: list[str], config: FinetuneConfig, pad_id: int
) -> list[dict[str, Any]]:
    return evaluate_transfer(
        runner,
        tokenizer,
        tasks,
        tuple(config.transfer_shots),
        config.transfer_examples,
        config.transfer_decode,
        pad_id,
        config.batch_size,
        config.max_new_tokens,
        # demonstrations need room, within the positions the model has
        min(TRANSFER_MAX_LENGTH, getattr(runner.model.config, "max_position_embeddings", 512)),
    )


def _check_memory(needed: int, device: Any, config: FinetuneConfig) -> None:
    have = available_memory(device)
    if needed > have:
        raise UserError(
            f"model {config.model!r} needs about {needed / 2**30:.1f} GiB to train with batch "
            f"{config.batch_size} x {config.max_length} tokens, but {device} has "
            f"{have / 2**30:.1f} GiB available"
        )


def _quality(
    runner: Runner, tokenizer: Any, task: Any, test_ex: list, config: FinetuneConfig, pad_id: int
) -> dict[str, Any]:
    """Greedy-decode the first ``decode_examples`` test prompts and score them."""
    from ftscale.finetune.metrics import quality

    sample = test_ex[: config.decode_examples]
    enc = encode(tokenizer, task, sample, config.max_length)
    prompts = [ids[:n] for ids, n in zip(enc.ids, enc.n_prompt, strict=True)]
    # cap each output at twice its reference length (+8): an untrained model that never says
    # eos would otherwise cost max_new_tokens steps; the cap never shortens a plausible output
    caps = [
        min(config.max_new_tokens, 2 * (len(ids) - n) + 8)
        for ids, n in zip(enc.ids, enc.n_prompt, strict=True)
    ]
    out = greedy_decode(
        runner, prompts, tokenizer.eos_token_id, pad_id, caps, 2 * config.batch_size
    )
    hyps = [tokenizer.decode(o, skip_special_tokens=True).strip() for o in out]
    refs = [ex.target for ex in sample]
    metrics = getattr(task, "metric", ("bleu", "chrf"))
    return quality(metrics, hyps, refs, [ex.lang for ex in sample])
