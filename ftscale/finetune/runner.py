"""The forward passes of an adapted model: target-position logits for training and evaluation,
and one cached greedy-decoding step. One-off checks at construction pick the fastest path that
reproduces the model's own numbers (docs/performance.md)."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

from ftscale.finetune.batching import Batch
from ftscale.finetune.methods import Adapted


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
