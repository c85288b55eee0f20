"""Tasks: the embedded ones from the registry, and the user's own through the same interface.

A :class:`Task` holds up to three splits of :class:`Example` s. Splits are parsed once per process
and cached: loading a task happens at the start of every finetuning run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import lzma
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftscale.data import templates
from ftscale.data.formats import CHAT_FORMATS
from ftscale.data.registry import TASKS, TASKS_BY_NAME, TaskSpec, prompt_for
from ftscale.errors import UserError

CORPORA_DIR = Path(__file__).resolve().parent / "corpora"
SPLITS = ("train", "dev", "test")
#: Task kinds: the embedded tasks' two, ``generate`` (user data with any response) and
#: ``text`` (continued pretraining: no response, loss on every token).
KINDS = ("translate", "summarize", "generate", "text")
#: Generation metrics by kind (a task may name its own).
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "translate": ("bleu", "chrf"),
    "summarize": ("rougeL",),
    "generate": ("rougeL", "exact_match"),
    "text": (),
}


@dataclass(frozen=True)
class Example:
    """One finetuning example; ``lang`` is the language of the target.

    ``messages`` holds a whole conversation ((role, content) pairs, the last one the
    assistant's response, which is ``target``; ``source`` is the last user turn) for chat and
    instruction data, None for a plain source/target pair. ``origin`` ("FILE:LINE") and
    ``fields`` (the record's own text fields, for a user's template) are not part of the
    example's identity."""

    source: str
    target: str
    lang: str = "und"
    messages: tuple[tuple[str, str], ...] | None = None
    origin: str | None = field(default=None, compare=False)
    fields: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    def error(self, message: str) -> UserError:
        """A UserError about this example, naming its file and line where it came from one."""
        path, _, line = (self.origin or "").rpartition(":")
        return UserError(message, path=path or None, line=int(line) if line.isdigit() else None)


class Task:
    """A task: named splits of examples, a prompt format and a metric.

    ``loader(split)`` returns the split's examples (an empty tuple where the task has none);
    it is called at most once per split. ``counts`` (examples per split), when given, answers
    :meth:`counts` without loading anything.
    """

    def __init__(
        self,
        name: str,
        kind: str,
        languages: Sequence[str],
        loader: Callable[[str], Sequence[Example]],
        *,
        source_lang: str | None = None,
        prompt_template: str | None = None,
        counts: dict[str, int] | None = None,
        description: str = "",
        data_format: str | None = None,
        template: str = "auto",
        metric: Sequence[str] | None = None,
        strict: bool = False,
        where: str | None = None,
    ):
        if kind not in KINDS:
            raise UserError(f"unknown task kind {kind!r}; choose one of {', '.join(KINDS)}")
        self.name = name
        self.kind = kind
        self.languages = tuple(languages)
        self.source_lang = source_lang
        self.description = description
        self._prompt_template = prompt_template
        self.format = data_format  # None: the embedded tasks' own prompts (kind)
        self.template = template
        self._metric = tuple(metric) if metric is not None else None
        self.strict = strict  # user data: a response longer than max_length is an error
        self.where = where  # the data's path (user data), named in errors
        self._loader = loader
        self._counts = counts
        self._cache: dict[str, tuple[Example, ...]] = {}
        self._orders: dict[int, list[int]] = {}
        self._hashes: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Task({self.name!r}, kind={self.kind!r}, languages={list(self.languages)})"

    @property
    def metric(self) -> tuple[str, ...]:
        """Generation metrics: the task's own, else ("bleu", "chrf") for translation,
        ("rougeL",) for summaries and other generation, none for text."""
        if self._metric is not None:
            return self._metric
        return DEFAULT_METRICS[self.kind]

    def _examples(self, split: str) -> tuple[Example, ...]:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if split not in self._cache:
            self._cache[split] = tuple(self._loader(split))
        return self._cache[split]

    def counts(self) -> dict[str, int]:
        """Examples per split (0 where the task has no such split)."""
        if self._counts is not None:
            return dict(self._counts)
        return {s: len(self._examples(s)) for s in SPLITS}

    def split(self, name: str) -> list[Example]:
        """The examples of split ``name`` ("train", "dev" or "test"); an empty split is an error."""
        examples = self._examples(name)
        if not examples:
            raise UserError(f"task {self.name}: split {name!r} is empty")
        return list(examples)

    def subset(self, data_size: int, seed: int) -> list[Example]:
        """``data_size`` training examples chosen at random by ``seed``.

        Deterministic and nested: for one seed, the first ``d`` examples of the order are the
        subset of size ``d``, so the 1,000-example subset lies inside the 10,000 one. The order
        comes from a hash of (seed, index), so it does not depend on numpy's RNG versions.
        """
        train = self._examples("train")
        if not train:
            raise UserError(f"task {self.name}: no training split to take a subset of")
        if isinstance(data_size, bool) or not isinstance(data_size, int) or data_size < 1:
            raise UserError(f"data size must be a positive integer, got {data_size!r}")
        if data_size > len(train):
            raise UserError(
                f"task {self.name}: data size {data_size} is larger than the training split "
                f"({len(train)} examples)",
                path=self.where,
            )
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserError(f"seed must be an integer, got {seed!r}")
        if seed not in self._orders:
            key = str(int(seed)).encode()
            self._orders[seed] = sorted(
                range(len(train)),
                key=lambda i: hashlib.blake2b(key + b":" + str(i).encode(), digest_size=8).digest(),
            )
        return [train[i] for i in self._orders[seed][:data_size]]

    def prompt(self, example: Example) -> str:
        """The text before the (last) response, with no tokenizer (the neutral template for
        conversations; ``data show`` with a model shows its chat template)."""
        if self.format is None or self._prompt_template is not None:
            if self._prompt_template is not None:
                return self._prompt_template.format(source=example.source, lang=example.lang)
            return prompt_for(self.kind, example.source, example.lang, self.source_lang)
        segs = self.segments(example, None)
        last = max(i for i, s in enumerate(segs) if s[1]) if any(s[1] for s in segs) else 0
        return "".join(s[0] for s in segs[:last])

    def template_for(self, tokenizer: Any) -> str:
        """Which template renders this task's examples for ``tokenizer``: "task" (the embedded
        task's prompt, or a legacy ``{source}`` prompt), "chat" (the model's chat template),
        "plain" (the neutral one), "custom" (the user's) or "text" (no template)."""
        if self.format is None or self._prompt_template is not None:
            return "task"
        if self.format == "text":
            return "text"
        if self.template == "chat":
            if tokenizer is not None and not templates.has_chat_template(tokenizer):
                raise UserError(
                    f"task {self.name}: template = 'chat', but the model's tokenizer has no "
                    "chat template; use 'auto' or 'plain'"
                )
            return "chat" if tokenizer is not None else "plain"
        if self.template == "plain":
            return "plain"
        if self.template not in templates.TEMPLATES:
            return "custom"
        if (
            self.format in CHAT_FORMATS
            and tokenizer is not None
            and templates.has_chat_template(tokenizer)
        ):
            return "chat"
        return "plain"

    def segments(self, example: Example, tokenizer: Any = None) -> list[templates.Segment]:
        """``example`` as (text, trained, eos) segments for ``tokenizer`` (ftscale.data.templates)."""
        mode = self.template_for(tokenizer)
        if mode == "task":
            return [(self.prompt(example), False, False), (example.target, True, True)]
        if mode == "text":
            return [(example.target, True, True)]
        turns = example.messages or (("user", example.source), ("assistant", example.target))
        if mode == "chat":
            return templates.chat(tokenizer, turns)
        if mode == "custom":
            return templates.plain(turns, self.template, dict(example.fields))
        if self.format == "prompt_completion" and example.messages is None:
            return [(example.source, False, False), (example.target, True, True)]
        if self.format == "source_target" and example.messages is None:
            return [(example.source + "\n", False, False), (example.target, True, True)]
        return templates.plain(turns)

    def data_hash(self, split: str) -> str:
        """sha256 (hex) of the split's examples: which data produced a result."""
        if split not in self._hashes:
            h = hashlib.sha256()
            for ex in self._examples(split):
                row = [ex.source, ex.target, ex.lang]
                if ex.messages is not None:
                    row.append([list(t) for t in ex.messages])
                h.update(json.dumps(row).encode("utf-8"))
                h.update(b"\n")
            self._hashes[split] = h.hexdigest()
        return self._hashes[split]


# --- embedded tasks -------------------------------------------------------------------------


@functools.cache
def manifest() -> dict:
    """The shipped corpora's MANIFEST.json (sources, file counts and hashes)."""
    path = CORPORA_DIR / "MANIFEST.json"
    if not path.exists():
        raise UserError("embedded corpora are missing; run `ftscale data build`", path=str(path))
    return json.loads(path.read_text(encoding="utf-8"))


def read_jsonl_xz(path: Path) -> list:
    """Every JSON value of an xz-compressed JSONL file (the shipped format)."""
    try:
        text = lzma.decompress(path.read_bytes()).decode("utf-8")
    except FileNotFoundError as exc:
        raise UserError("shipped data file is missing", path=str(path)) from exc
    except lzma.LZMAError as exc:
        raise UserError(f"corrupt xz file ({exc})", path=str(path)) from exc
    return [json.loads(line) for line in text.splitlines()]


def _embedded_loader(spec: TaskSpec) -> Callable[[str], tuple[Example, ...]]:
    def load(split: str) -> tuple[Example, ...]:
        if split not in spec.splits():
            return ()
        rows = read_jsonl_xz(CORPORA_DIR / "tasks" / f"{spec.name}.{split}.jsonl.xz")
        return tuple(Example(r["source"], r["target"], r["lang"]) for r in rows)

    return load


def _embedded_counts(spec: TaskSpec) -> dict[str, int]:
    files = manifest()["files"]
    return {s: files.get(f"tasks/{spec.name}.{s}.jsonl.xz", {}).get("examples", 0) for s in SPLITS}


def list_tasks() -> list[str]:
    """Names of the embedded tasks, in registry order."""
    return [t.name for t in TASKS]


@functools.cache
def get_task(name: str) -> Task:
    """The embedded task ``name`` (cached per process); unknown name: :class:`UserError`."""
    spec = TASKS_BY_NAME.get(name)
    if spec is None:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}")
    return Task(
        spec.name,
        spec.kind,
        spec.languages,
        _embedded_loader(spec),
        source_lang=spec.source_lang,
        counts=_embedded_counts(spec),
        description=spec.description,
    )
