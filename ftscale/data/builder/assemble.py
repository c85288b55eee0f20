"""From extracted text to the shipped corpora: filtering, splitting, leak removal, writing.

Every decision here is a pure function of the input text, so a rerun gives byte-identical files.
Splits are decided by a stable hash (sha256) of a source-side key, never by random state:

- LibreOffice help segments by ``(page, segment id)``: the same key is test for every language
  pair, so the zero-shot X->De / X->Zh test sets reuse only keys no training split uses.
- Debian descriptions by their ``Description-md5`` (the id shared by all translations of one
  description): one side goes to pretraining text, the other to ``summarize-multi``; within the
  task, dev/test is decided by the same md5 for every language.

Then every training split of every task, and the pretraining text, is cleaned of every dev/test
item of every task (:class:`ftscale.data.overlap.LeakFinder`).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ftscale.data.overlap import LeakFinder, normalize
from ftscale.data.registry import TASKS, ZERO_SHOT_SOURCES
from ftscale.fsutil import atomic_dir

Record = dict[str, str]  # {"source", "target", "lang"}

#: Translation pairs longer than this (words per side; CJK: characters / 2) are dropped.
MAX_PAIR_WORDS = 40
#: Summarisation documents: long description length bounds, words.
MIN_DOC_WORDS, MAX_DOC_WORDS = 25, 150
#: Per-language caps for summarize-multi (examples): keep the shipped files small.
SUM_TRAIN_CAP, SUM_EVAL_CAP = 6000, 400
#: Share of Debian descriptions (by md5 hash, percent) given to pretraining text.
DESC_PRETRAIN_PERCENT = 40
#: Share of pretraining documents held out (percent, by document-id hash).
HELDOUT_PERCENT = 2
#: Pretraining documents are cut into pieces of at most this many characters, at line ends.
MAX_DOC_CHARS = 4000
#: Character caps per pretraining stream (keeps the repository small); None = no cap.
STREAM_CAPS: dict[str, int | None] = {
    "en": 8_000_000,
    "de": 8_000_000,
    "zh": None,
    "en-de": 6_000_000,
    "en-zh": None,
}
#: Summarisation languages (Debian Translation-xx codes -> task codes).
SUM_LANGS = ("en", "de", "fr", "it")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_DEVANAGARI = re.compile(r"[\u0900-\u097f]")
_LETTER = re.compile(r"[^\W\d_]")
_CODE = re.compile(r"\w\.\w+\(|[{};=<>$]|^\s*(Sub|Function|Dim|REM|import|def|End Sub)\b|%\w")


def stable_hash(key: str) -> int:
    """A 48-bit integer from sha256(key): the same on every machine and Python version."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16)


@dataclass
class Raw:
    """Everything the assembly step needs, already extracted from the source packages.

    help: language -> {(page, segment id): text} (LibreOffice help; "en" is the source side).
    descriptions: language -> {description md5: (synopsis, long description)}.
    mono: stream ("en", "de", "zh") -> [(document id, text)] of monolingual documents.
    bilingual: stream ("en-de", "en-zh") -> [(document id, text)] of already-paired documents.
    """

    help: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    descriptions: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    mono: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    bilingual: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


# --- filters ----------------------------------------------------------------------------


def n_words(text: str) -> int:
    """Length in words; CJK/kana text counts two characters as one word."""
    cjk = len(_CJK.findall(text)) + len(_KANA.findall(text))
    return len(_CJK.sub(" ", _KANA.sub(" ", text)).split()) + (cjk + 1) // 2


def usable_source(text: str) -> bool:
    """A sentence worth translating: some letters, not code, not a bare placeholder."""
    if len(_LETTER.findall(text)) < 3 or _CODE.search(text):
        return False
    return 1 <= n_words(text) <= MAX_PAIR_WORDS


def is_translated(text: str, english: str, lang: str) -> bool:
    """False for segments left in English (or in the wrong script) in a translated file."""
    if normalize(text) == normalize(english):
        return False
    if lang == "zh":
        return bool(_CJK.search(text)) and len(_CJK.findall(text)) * 4 >= len(_LETTER.findall(text))
    if lang == "hi":
        return bool(_DEVANAGARI.search(text))
    words, en_words = set(normalize(text).split()), set(normalize(english).split())
    # Mostly the same words as the English: an untranslated or half-translated segment.
    return not (
        len(en_words) >= 3 and words and len(words & en_words) / len(words | en_words) > 0.7
    )


# --- translation tasks --------------------------------------------------------------------

_TEST, _DEV = 30, 60  # per-mille buckets of LibreOffice keys: [0, 30) test, [30, 60) dev


def _help_bucket(key: tuple[str, str]) -> str:
    b = stable_hash(f"lo:{key[0]}#{key[1]}") % 1000
    return "test" if b < _TEST else "dev" if b < _DEV else "train"


def translation_task(
    help_: dict[str, dict[tuple[str, str], str]], src: str, tgt: str, splits: Iterable[str]
) -> dict[str, list[Record]]:
    """Aligned, filtered, deduplicated src->tgt pairs, split by key bucket.

    A pair must have a usable English original for the key (so every language pair is filtered
    by the same rule) and both sides translated where they are not English.
    """
    en = help_["en"]
    out: dict[str, list[Record]] = {s: [] for s in splits}
    seen: set[tuple[str, str]] = set()
    for key in sorted(en):
        if key not in help_[src] or key not in help_[tgt]:
            continue
        english = en[key]
        s, t = help_[src][key], help_[tgt][key]
        if not usable_source(english) or n_words(s) > MAX_PAIR_WORDS:
            continue
        if n_words(t) > MAX_PAIR_WORDS * 3 // 2:
            continue
        if src != "en" and not is_translated(s, english, src):
            continue
        if not is_translated(t, english, tgt):
            continue
        pair = (normalize(s), normalize(t))
        if pair in seen:
            continue
        seen.add(pair)
        bucket = _help_bucket(key)
        if bucket in out:
            out[bucket].append({"source": s, "target": t, "lang": tgt})
    return out


# --- summarisation ------------------------------------------------------------------------


def desc_side(md5: str) -> str:
    """ "pretrain" or "summarize": which use a Debian description goes to (all its languages)."""
    return "pretrain" if stable_hash(f"desc:{md5}") % 100 < DESC_PRETRAIN_PERCENT else "summarize"


def _sum_bucket(md5: str) -> str:
    b = stable_hash(f"sum:{md5}") % 1000
    return "test" if b < 80 else "dev" if b < 160 else "train"


def summarization_task(
    descriptions: dict[str, dict[str, tuple[str, str]]],
) -> dict[str, list[Record]]:
    """Long description -> synopsis per language, from the summarisation side of the md5 split."""
    english = descriptions.get("en", {})
    out: dict[str, list[Record]] = {"train": [], "dev": [], "test": []}
    caps = {"train": SUM_TRAIN_CAP, "dev": SUM_EVAL_CAP, "test": SUM_EVAL_CAP}
    for lang in SUM_LANGS:
        picked: dict[str, list[tuple[int, Record]]] = {"train": [], "dev": [], "test": []}
        seen: set[str] = set()
        for md5, (syn, long) in sorted(descriptions.get(lang, {}).items()):
            if desc_side(md5) != "summarize":
                continue
            if not (MIN_DOC_WORDS <= n_words(long) <= MAX_DOC_WORDS):
                continue
            if not (2 <= n_words(syn) <= 20):
                continue
            if lang != "en":
                en_syn, en_long = english.get(md5, ("", ""))
                if not is_translated(long, en_long, lang) or not is_translated(syn, en_syn, lang):
                    continue
            norm = normalize(long)
            if norm in seen:
                continue
            seen.add(norm)
            rec = {"source": long, "target": syn, "lang": lang}
            bucket = _sum_bucket(md5)
            picked[bucket].append((stable_hash(f"pick:{md5}"), rec))
        for split, recs in picked.items():
            # Caps keep a hash-ordered prefix: a deterministic, unbiased sample.
            recs.sort(key=lambda hr: (hr[0], hr[1]["source"]))
            out[split].extend(r for _, r in recs[: caps[split]])
    return out


# --- all tasks ------------------------------------------------------------------------------


def build_tasks(raw: Raw) -> dict[str, dict[str, list[Record]]]:
    """Every registry task's splits, with training splits cleaned of all dev/test items."""
    tasks: dict[str, dict[str, list[Record]]] = {}
    for spec in TASKS:
        if spec.kind == "summarize":
            tasks[spec.name] = summarization_task(raw.descriptions)
        else:
            src, tgt = spec.languages
            tasks[spec.name] = translation_task(raw.help, src, tgt, spec.splits())
    forbidden = evaluation_strings(tasks)
    for splits in tasks.values():
        if "train" in splits:
            splits["train"] = [
                r
                for r in splits["train"]
                if normalize(r["source"]) not in forbidden
                and normalize(r["target"]) not in forbidden
            ]
    for splits in tasks.values():
        for split, recs in splits.items():
            # Hash order, not help-page order: a prefix of a split (a fixed dev sample) is a
            # fair sample of the whole split.
            splits[split] = sorted(recs, key=lambda r: _record_key(split, r))
    return tasks


def _record_key(split: str, r: Record) -> tuple[int, str, str]:
    return (
        stable_hash(f"order:{split}:{r['lang']}:{r['source']}\t{r['target']}"),
        r["source"],
        r["target"],
    )


def evaluation_strings(tasks: dict[str, dict[str, list[Record]]]) -> set[str]:
    """Normalised source and target of every dev/test example of every task."""
    out: set[str] = set()
    for splits in tasks.values():
        for split in ("dev", "test"):
            for r in splits.get(split, []):
                out.add(normalize(r["source"]))
                out.add(normalize(r["target"]))
    return out


def evaluation_items(tasks: dict[str, dict[str, list[Record]]]) -> list[str]:
    """Strings that must not occur in pretraining text: dev/test sources, targets and the
    paragraphs of multi-paragraph sources (a summarisation document)."""
    items: set[str] = set()
    for splits in tasks.values():
        for split in ("dev", "test"):
            for r in splits.get(split, []):
                items.add(r["source"])
                items.add(r["target"])
                items.update(p for p in r["source"].split("\n") if p.strip())
    return sorted(items)


# --- pretraining text ---------------------------------------------------------------------


def _interleave(a: list[str], b: list[str]) -> str:
    """Two versions of one text in one document: paragraph by paragraph when they align."""
    if len(a) == len(b):
        return "\n".join(x for pair in zip(a, b, strict=True) for x in pair)
    return "\n".join(a) + "\n\n" + "\n".join(b)


def description_documents(
    descriptions: dict[str, dict[str, tuple[str, str]]],
) -> dict[str, list[tuple[str, str]]]:
    """Pretraining documents from the pretraining side of the Debian descriptions.

    A description with a Chinese or German translation becomes one bilingual document
    (Chinese first: it is the scarcer pair); the others are English monolingual documents.
    """
    out: dict[str, list[tuple[str, str]]] = {"en": [], "en-de": [], "en-zh": []}
    english = descriptions.get("en", {})
    for md5, (syn, long) in sorted(english.items()):
        if desc_side(md5) != "pretrain":
            continue
        en_paras = [syn, *long.split("\n")] if long else [syn]
        for lang in ("zh", "de"):
            other = descriptions.get(lang, {}).get(md5)
            if other and is_translated(other[1] or other[0], long or syn, lang):
                paras = [other[0], *other[1].split("\n")] if other[1] else [other[0]]
                out[f"en-{lang}"].append((f"debian:{md5}", _interleave(en_paras, paras)))
                break
        else:
            out["en"].append((f"debian:{md5}", "\n".join(en_paras)))
    return out


def chunk(doc_id: str, text: str, max_chars: int = MAX_DOC_CHARS) -> list[tuple[str, str]]:
    """Cut a long document at line ends into pieces of at most ``max_chars`` characters."""
    if len(text) <= max_chars:
        return [(doc_id, text)]
    pieces, cur, size = [], [], 0
    for line in text.split("\n"):
        if cur and size + len(line) + 1 > max_chars:
            pieces.append("\n".join(cur))
            cur, size = [], 0
        cur.append(line[:max_chars])
        size += len(line) + 1
    if cur:
        pieces.append("\n".join(cur))
    return [(f"{doc_id}#{i}", p) for i, p in enumerate(pieces)]


def build_pretraining(raw: Raw, eval_items: list[str]) -> dict[str, dict[str, list[str]]]:
    """{"train"|"heldout": {stream: [document]}} with every evaluation item removed.

    A line that equals or contains an evaluation item is dropped (not the whole document);
    documents left empty are dropped. Streams over their cap keep a hash-ordered sample.
    """
    streams: dict[str, list[tuple[str, str]]] = {s: [] for s in STREAM_CAPS}
    for stream, docs in raw.mono.items():
        streams[stream].extend(docs)
    for stream, docs in raw.bilingual.items():
        streams[stream].extend(docs)
    for stream, docs in description_documents(raw.descriptions).items():
        streams[stream].extend(docs)

    finder = LeakFinder(eval_items)
    out: dict[str, dict[str, list[str]]] = {"train": {}, "heldout": {}}
    for stream, docs in streams.items():
        pieces: list[tuple[int, str, str]] = []
        for doc_id, text in docs:
            kept = "\n".join(line for line in text.split("\n") if not finder.leaks(line))
            kept = re.sub(r"\n{3,}", "\n\n", kept).strip()
            for pid, piece in chunk(doc_id, kept):
                pieces.append((stable_hash(f"doc:{stream}:{pid}"), pid, piece))
        pieces.sort()
        cap, total = STREAM_CAPS[stream], 0
        chosen: list[tuple[str, str]] = []
        for _, pid, piece in pieces:
            if cap is not None and total + len(piece) > cap:
                break
            chosen.append((pid, piece))
            total += len(piece)
        # Documents stay in hash order: any prefix of a stream is a fair sample of it.
        for split in out:
            out[split][stream] = [
                piece
                for pid, piece in chosen
                if (stable_hash(f"heldout:{pid}") % 100 < HELDOUT_PERCENT) == (split == "heldout")
            ]
    return out


# --- writing ------------------------------------------------------------------------------


def _xz_jsonl(rows: Iterable[object]) -> bytes:
    text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows)
    data = text.encode("utf-8")
    # xz has no timestamps in its container: same text -> same bytes. Preset 9 (64 MiB
    # window) only pays off for inputs larger than preset 6's 8 MiB window, and costs ~0.3 s
    # of set-up per call.
    return lzma.compress(data, preset=9 if len(data) > 8 << 20 else 6)


def write_corpora(
    out_dir: Path,
    tasks: dict[str, dict[str, list[Record]]],
    pretraining: dict[str, dict[str, list[str]]],
    sources: list[dict],
    licenses: dict[str, str],
) -> dict:
    """Write the whole corpora folder atomically (temp folder + rename); return the manifest.

    Layout: ``tasks/<task>.<split>.jsonl.xz`` (one {"source","target","lang"} per line),
    ``pretrain/<stream>.<split>.jsonl.xz`` (one JSON string per line), ``LICENSES/<source>.txt``,
    ``MANIFEST.json`` (sources with version and sha256; shipped files with counts and sha256).
    """
    files: dict[str, dict] = {}
    with atomic_dir(out_dir, owned=lambda e: (e.parent / "MANIFEST.json").is_file()) as tmp:
        (tmp / "tasks").mkdir()
        (tmp / "pretrain").mkdir()
        (tmp / "LICENSES").mkdir()
        for name in sorted(tasks):
            for split in sorted(tasks[name]):
                rel = f"tasks/{name}.{split}.jsonl.xz"
                blob = _xz_jsonl(tasks[name][split])
                (tmp / rel).write_bytes(blob)
                files[rel] = {
                    "examples": len(tasks[name][split]),
                    "bytes": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(),
                }
        for split in sorted(pretraining):
            for stream in sorted(pretraining[split]):
                docs = pretraining[split][stream]
                rel = f"pretrain/{stream}.{split}.jsonl.xz"
                blob = _xz_jsonl(docs)
                (tmp / rel).write_bytes(blob)
                files[rel] = {
                    "documents": len(docs),
                    "characters": sum(len(d) for d in docs),
                    "bytes": len(blob),
                    "sha256": hashlib.sha256(blob).hexdigest(),
                }
        for name in sorted(licenses):
            (tmp / "LICENSES" / f"{name}.txt").write_text(licenses[name], encoding="utf-8")
        manifest = {"format": 1, "sources": sources, "files": files}
        (tmp / "MANIFEST.json").write_text(
            json.dumps(manifest, indent=1, ensure_ascii=False, sort_keys=True) + "\n",
            encoding="utf-8",
        )
    return manifest


def assemble(raw: Raw, out_dir: Path, sources: list[dict], licenses: dict[str, str]) -> dict:
    """The whole assembly step: tasks, pretraining text, leak removal, atomic write."""
    tasks = build_tasks(raw)
    pretraining = build_pretraining(raw, evaluation_items(tasks))
    return write_corpora(out_dir, tasks, pretraining, sources, licenses)


__all__ = ["Raw", "assemble", "build_tasks", "build_pretraining", "ZERO_SHOT_SOURCES"]
