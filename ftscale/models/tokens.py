"""Pretraining tokens: the streams tokenised once and packed into arrays (cached per tokenizer
and corpus), training windows sampled by (seed, step), and fixed held-out windows."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.fsutil import atomic_write
from ftscale.models.checkpoint import sha256_file


def tokenizer_hash(tok_dir: Path) -> str:
    """SHA-256 of a saved tokenizer's ``tokenizer.json``."""
    return sha256_file(tok_dir / "tokenizer.json")


def pack_streams(texts: dict[str, list[str]], tokenizer: Any) -> dict[str, Any]:
    """Tokenise each stream's documents, each followed by EOS, into one uint16/int32 array."""
    import numpy as np

    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError(
            "the tokenizer has no EOS token; the pretraining text needs one between documents"
        )
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.int32
    packed = {}
    for stream in sorted(texts):
        docs = [d for d in texts[stream] if d]
        enc = (
            tokenizer.backend_tokenizer.encode_batch(docs, add_special_tokens=False) if docs else []
        )
        ids: list[int] = []
        for e in enc:
            ids.extend(e.ids)
            ids.append(eos)
        packed[stream] = np.asarray(ids, dtype=dtype)
    return packed


def cached_packed(
    state_dir: Path, split: str, texts: dict[str, list[str]], tokenizer: Any, tok_hash: str
) -> Path:
    """Pack ``texts`` once per (tokenizer, corpus) into ``state_dir``; return the cache file."""
    import numpy as np

    key = hashlib.sha256(
        (tok_hash + json.dumps({s: len(v) for s, v in sorted(texts.items())})).encode()
    ).hexdigest()[:16]
    path = state_dir / f"tokens-{split}-{key}.npz"
    if not path.exists():
        packed = pack_streams(texts, tokenizer)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **packed)
    return path


class Batches:
    """Training windows: stream chosen by weight, offset uniform, both drawn from rng(seed, step)."""

    def __init__(
        self,
        packed: dict[str, Any],
        seq_len: int,
        batch_size: int,
        seed: int,
        weights: dict[str, float] | None,
    ):
        import numpy as np

        self.streams = [s for s in sorted(packed) if len(packed[s]) > seq_len + 1]
        if not self.streams:
            raise UserError(
                f"the pretraining text is too short: no stream has more than {seq_len + 1} tokens"
            )
        self.data = [packed[s] for s in self.streams]
        if weights:
            unknown = set(weights) - set(packed)
            if unknown:
                raise UserError(f"recipe: stream_weights names unknown streams {sorted(unknown)}")
            w = np.array([float(weights.get(s, 0.0)) for s in self.streams])
        else:
            w = np.array([len(d) for d in self.data], dtype=float)
        if not (w >= 0).all() or w.sum() <= 0:
            raise UserError("recipe: stream_weights must be non-negative with a positive sum")
        self.p = w / w.sum()
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed

    def get(self, step: int) -> tuple[Any, Any]:
        import numpy as np
        import torch

        rng = np.random.default_rng([self.seed, step])
        which = rng.choice(len(self.streams), size=self.batch_size, p=self.p)
        rows = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int64)
        for i, j in enumerate(which):
            off = int(rng.integers(0, len(self.data[j]) - self.seq_len - 1))
            rows[i] = self.data[j][off : off + self.seq_len + 1]
        t = torch.from_numpy(rows)
        return t[:, :-1], t[:, 1:]


def windows(ids: Any, n: int, length: int, stride: int | None = None) -> list[Any]:
    """Up to ``n`` consecutive windows of ``length`` tokens from the start of the 1-D array
    ``ids``, one every ``stride`` tokens (default ``length``: back to back); a short last
    window is kept if it has at least two tokens. Views of ``ids``, not copies."""
    stride = length if stride is None else stride
    out = [ids[i * stride : i * stride + length] for i in range(n) if i * stride < len(ids)]
    return [w for w in out if len(w) >= 2]


def heldout_windows(packed: dict[str, Any], seq_len: int, n_windows: int) -> dict[str, Any]:
    """The first ``n_windows`` consecutive windows of each held-out stream (fixed, so
    comparable), as ``(inputs, targets)`` of shape (windows, ``seq_len``): windows of
    ``seq_len + 1`` tokens every ``seq_len``; a stream shorter than one window gives one short
    window of all its tokens."""
    import numpy as np
    import torch

    out = {}
    for stream, arr in sorted(packed.items()):
        found = windows(arr, n_windows, seq_len + 1, stride=seq_len)
        full = [w for w in found if len(w) == seq_len + 1]
        rows = full or found[:1]
        if rows:
            a = torch.from_numpy(np.stack(rows).astype("int64"))
            out[stream] = (a[:, :-1].contiguous(), a[:, 1:].contiguous())
    return out


def packed_hash(packed: dict[str, Any]) -> str:
    """SHA-256 of packed streams (stream name + int32 array bytes, sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(packed):
        h.update(name.encode() + b"\0")
        h.update(packed[name].astype("<i4").tobytes())
    return h.hexdigest()


def load_npz(path: Path) -> dict[str, Any]:
    """The arrays of a packed-token cache file."""
    import numpy as np

    with np.load(path) as z:
        return {k: z[k] for k in z.files}
