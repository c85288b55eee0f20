"""Pretraining the family: ``ftscale pretrain`` and :func:`pretrain_family`.

One call pretrains every member of a recipe into an output folder (layout:
:mod:`ftscale.models.checkpoint`): it trains (or reuses) the shared tokenizer, packs the
streams once (:mod:`ftscale.models.tokens`), runs the loop (:mod:`ftscale.models.loop`) for each
member, largest first, in worker processes if asked, and writes ``family.json``. Members
already finished are skipped; an interrupted member resumes from its state.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.fsutil import atomic_dir, atomic_write, read_user_json
from ftscale.models.checkpoint import FAMILY_FILE, META_FILE, sha256_file
from ftscale.models.family import shape_from_dict, shape_to_dict
from ftscale.models.loop import train_model
from ftscale.models.recipe import DEFAULT_RECIPE, recipe_from, recipe_hash, recipe_shapes
from ftscale.models.tokens import cached_packed, load_npz, packed_hash, tokenizer_hash

__all__ = ["DEFAULT_RECIPE", "pretrain_family", "recipe_from", "train_model"]


def _load_corpus(corpus: str | os.PathLike | dict | None) -> dict[str, dict[str, list[str]]]:
    """``{"train": {stream: docs}, "heldout": {...}}`` from a dict, a JSON file, or ftscale.data."""
    if corpus is None:
        try:
            from ftscale.data import load_pretraining
        except ImportError as exc:
            raise UserError(
                f"the pretraining text (ftscale.data.load_pretraining) is not available: {exc}"
            ) from None
        return {"train": load_pretraining("train"), "heldout": load_pretraining("heldout")}
    data = corpus if isinstance(corpus, dict) else read_user_json(corpus, "corpus")
    if not isinstance(data, dict) or not {"train", "heldout"} <= set(data):
        raise UserError('corpus must be {"train": {stream: [documents]}, "heldout": {...}}')
    for split in ("train", "heldout"):
        if not isinstance(data[split], dict) or not all(
            isinstance(v, list) and all(isinstance(d, str) for d in v) for v in data[split].values()
        ):
            raise UserError(f"corpus {split!r} must map stream names to lists of documents")
    return data


def _train_member_worker(
    out: str, name: str, shape: dict, recipe: dict, device: str = "cpu"
) -> dict:
    """Process-pool entry point: one member, one thread."""
    from transformers import PreTrainedTokenizerFast

    out_p = Path(out)
    tok = PreTrainedTokenizerFast.from_pretrained(out_p / "tokenizer")
    state = out_p / ".state"
    corpus = json.loads((state / "corpus_ref.json").read_text())
    packed = {split: load_npz(state / corpus[split]) for split in ("train", "heldout")}
    res = train_model(
        out_p,
        name,
        shape_from_dict(shape),
        recipe,
        tok,
        packed["train"],
        packed["heldout"],
        device=device,
    )
    return {
        "name": res.name,
        "tokens_per_second": res.tokens_per_second,
        "train_seconds": res.wall_seconds,
    }


def pretrain_family(
    out: str | os.PathLike,
    recipe: dict[str, Any] | None = None,
    *,
    corpus: str | os.PathLike | dict | None = None,
    tokenizer: Any = None,
    only: list[str] | None = None,
    device: str = "cpu",
    workers: int = 1,
    keep_state: bool = False,
) -> dict:
    """Pretrain every member of a recipe into ``out`` and write ``family.json``; returns it.

    ``corpus`` defaults to :func:`ftscale.data.load_pretraining`; ``tokenizer`` defaults to
    :func:`ftscale.data.train_tokenizer` on the training text (``vocab_size`` tokens). Members
    already finished in ``out`` are skipped; an interrupted member resumes from its state.
    ``workers`` single-threaded processes train members in parallel (largest first).
    ``device`` ("cpu", "cuda", ...) is where the training runs; the shipped family was trained
    on the CPU, and another device reproduces it only up to floating-point differences.
    """
    t_start = time.perf_counter()
    recipe = recipe_from(recipe)
    shapes = recipe_shapes(recipe)
    stray = sorted(set(recipe["member_lr"] or {}) - set(shapes))
    if stray:
        raise UserError(f"recipe: member_lr names unknown member(s) {stray}; have {list(shapes)}")
    if only:
        unknown = [n for n in only if n not in shapes]
        if unknown:
            raise UserError(f"unknown member(s) {unknown}; this recipe has {list(shapes)}")
        shapes = {n: s for n, s in shapes.items() if n in only}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", path=str(out))
    fam_file = out / FAMILY_FILE
    if fam_file.exists():
        old = json.loads(fam_file.read_text())
        if old.get("recipe_hash") != recipe_hash(recipe):
            raise UserError(
                "folder holds a family built with a different recipe; use a fresh --out",
                path=str(out),
            )
    state = out / ".state"
    state.mkdir(parents=True, exist_ok=True)
    texts = _load_corpus(corpus)

    tok_dir = out / "tokenizer"
    if tokenizer is None and not (tok_dir / "tokenizer.json").exists():
        from ftscale.data import train_tokenizer

        all_train = [d for s in sorted(texts["train"]) for d in texts["train"][s]]
        tokenizer = train_tokenizer(all_train, recipe["vocab_size"])
    if tokenizer is not None:
        if len(tokenizer) > recipe["vocab_size"]:
            raise UserError(
                f"tokenizer has {len(tokenizer)} tokens, more than vocab_size {recipe['vocab_size']}"
            )
        if tokenizer.eos_token_id is None:
            raise UserError("the tokenizer has no EOS token")
        if (tok_dir / "tokenizer.json").exists():
            import tempfile

            with tempfile.TemporaryDirectory() as td:
                tokenizer.save_pretrained(td)
                if sha256_file(Path(td) / "tokenizer.json") != tokenizer_hash(tok_dir):
                    raise UserError(
                        "folder holds a different tokenizer; use a fresh --out", path=str(out)
                    )
        else:
            with atomic_dir(tok_dir) as tmp:
                tokenizer.save_pretrained(tmp)
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    tok_hash = tokenizer_hash(tok_dir)
    ref = {}
    for split in ("train", "heldout"):
        ref[split] = cached_packed(state, split, texts[split], tok, tok_hash).name
    with atomic_write(state / "corpus_ref.json") as fh:
        json.dump(ref, fh)
    packed = {split: load_npz(state / ref[split]) for split in ("train", "heldout")}
    stream_tokens = {s: int(len(a)) for s, a in packed["train"].items()}
    corpus_sha256 = {split: packed_hash(arrays) for split, arrays in packed.items()}
    del packed

    todo = sorted(shapes.items(), key=lambda kv: -kv[1].params_total())  # largest first
    results: dict[str, dict] = {}
    if workers <= 1:
        for name, shape in todo:
            results[name] = _train_member_worker(
                str(out), name, shape_to_dict(shape), recipe, device
            )
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futs = {
                pool.submit(_train_member_worker, str(out), n, shape_to_dict(s), recipe, device): n
                for n, s in todo
            }
            for fut, name in futs.items():
                results[name] = fut.result()

    members = []
    for name in shapes:
        ckpts = sorted(
            (p for p in out.iterdir() if p.name == name or p.name.startswith(name + "@")),
            key=lambda p: json.loads((p / META_FILE).read_text())["pretrain_tokens"],
        )
        for p in ckpts:
            meta = json.loads((p / META_FILE).read_text())
            members.append(
                {
                    k: meta[k]
                    for k in (
                        "name",
                        "member",
                        "model_size",
                        "model_size_nonembed",
                        "pretrain_tokens",
                        "heldout_loss",
                        "tokens_per_second",
                        "train_seconds",
                        "heldout_curve",
                    )
                    if k in meta
                }
            )
    family = {
        "family": recipe["family"],
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe),
        "tokenizer_sha256": tok_hash,
        "train_stream_tokens": stream_tokens,
        # SHA-256 of the packed token streams (stream name + int array bytes, sorted by name).
        "corpus_sha256": corpus_sha256,
        "members": members,
        "workers": workers,
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "cpu": _cpu_name(),
    }
    with atomic_write(fam_file) as fh:
        json.dump(family, fh, indent=2)
    if not keep_state and not only:
        shutil.rmtree(state, ignore_errors=True)
    return family


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"
