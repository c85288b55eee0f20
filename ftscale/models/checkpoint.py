"""The checkpoint format of the family, written by pretraining and read by the registry.

Layout of a pretraining output folder ``OUT`` (the shipped family is one such folder):

    OUT/family.json          recipe, members, losses, throughput, wall time
    OUT/tokenizer/           the shared tokenizer
    OUT/ftlm-k/              final checkpoint of member k (config, fp16 safetensors, tokenizer,
                             ftscale_meta.json)
    OUT/ftlm-k@<tokens>/     intermediate checkpoints (pretraining-tokens factor)
    OUT/.state/              resume state (fp32 weights + AdamW moments) and token caches; removed
                             when the whole family is done unless ``keep_state``

Every checkpoint folder is written with :func:`ftscale.fsutil.atomic_dir`, and its
``ftscale_meta.json`` records the SHA-256 of the weights, so a half-written checkpoint is never
loaded as if complete.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ftscale.fsutil import atomic_dir, atomic_write

META_FILE = "ftscale_meta.json"
FAMILY_FILE = "family.json"


def format_tokens(n: int) -> str:
    """Compact token count for checkpoint names: 262144 -> '262k', 2097152 -> '2.1M'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            v = n / div
            s = f"{v:.0f}" if v >= 100 else f"{v:.3g}"
            return f"{s}{suffix}"
    return str(n)


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_checkpoint(dest: Path, model: Any, tok_dir: Path, meta: dict[str, Any]) -> Path:
    """Publish ``model`` as an fp16 safetensors checkpoint folder ``dest`` with the tokenizer
    files of ``tok_dir`` and ``meta`` (plus the weights' SHA-256) as ``ftscale_meta.json``;
    atomically: the folder appears complete or not at all."""
    import torch

    # An existing folder is replaced only if it is a checkpoint (it holds our metadata file).
    with atomic_dir(dest, owned=lambda e: (e.parent / META_FILE).is_file()) as tmp:
        half = copy.deepcopy(model).to("cpu", torch.float16)
        half.save_pretrained(tmp, safe_serialization=True)
        for f in tok_dir.iterdir():
            shutil.copy2(f, tmp / f.name)
        meta = {**meta, "weights_sha256": sha256_file(tmp / "model.safetensors")}
        with atomic_write(tmp / META_FILE) as fh:
            json.dump(meta, fh, indent=2)
    return dest


def save_state(path: Path, model: Any, opt: Any, **fields: Any) -> None:
    """Write the resume state (fp32 weights, optimiser moments and ``fields``) atomically."""
    import torch

    with atomic_write(path, "wb") as fh:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), **fields}, fh)


def load_state(path: Path) -> dict[str, Any]:
    """The resume state written by :func:`save_state` (on the CPU)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


#: file_digest reads this many blocks of this many bytes from a large file
DIGEST_BLOCKS, DIGEST_BLOCK_BYTES = 33, 1 << 16


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's size and content; a file larger than ``DIGEST_BLOCKS`` blocks of
    ``DIGEST_BLOCK_BYTES`` bytes (2.1 MiB) is sampled: that many blocks spread evenly from its
    first to its last byte (as imohash does), so a multi-GB weight file costs ~2 MiB of reading.
    Retrained weights differ everywhere, so any block shows the change; an edit confined
    to a few bytes between blocks is not seen (the file's size and name still are)."""
    size = path.stat().st_size
    h = hashlib.sha256(f"{size};".encode())
    with open(path, "rb") as fh:
        if size <= DIGEST_BLOCKS * DIGEST_BLOCK_BYTES:
            h.update(fh.read())
        else:
            last = size - DIGEST_BLOCK_BYTES
            for i in range(DIGEST_BLOCKS):
                fh.seek(i * last // (DIGEST_BLOCKS - 1))
                h.update(fh.read(DIGEST_BLOCK_BYTES))
    return h.hexdigest()
