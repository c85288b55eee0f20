"""The pretraining text shipped with the project: monolingual and naturally paired streams."""

from __future__ import annotations

import functools

from ftscale.data.tasks import CORPORA_DIR, read_jsonl_xz
from ftscale.errors import UserError

#: Stream names: monolingual "en", "de", "zh"; bilingual "en-de", "en-zh" (documents holding a
#: text and its translation, from sources disjoint from every task).
STREAMS = ("en", "de", "zh", "en-de", "en-zh")
PRETRAIN_SPLITS = ("train", "heldout")


@functools.cache
def _stream(split: str, stream: str) -> tuple[str, ...]:
    return tuple(read_jsonl_xz(CORPORA_DIR / "pretrain" / f"{stream}.{split}.jsonl.xz"))


def load_pretraining(
    split: str = "train", streams: tuple[str, ...] | list[str] | None = None
) -> dict[str, list[str]]:
    """Pretraining documents by stream, e.g. ``{"en": [...], "en-de": [...], ...}``.

    ``split`` is "train" or "heldout" (about 2% of documents, chosen by a hash of the document
    id, for measuring pretraining loss). ``streams`` picks some streams (default: all). Parsed
    files are cached for the life of the process.
    """
    if split not in PRETRAIN_SPLITS:
        raise UserError(f"unknown pretraining split {split!r}; choose train or heldout")
    chosen = STREAMS if streams is None else tuple(streams)
    for s in chosen:
        if s not in STREAMS:
            raise UserError(f"unknown pretraining stream {s!r}; known: {', '.join(STREAMS)}")
    return {s: list(_stream(split, s)) for s in chosen}
