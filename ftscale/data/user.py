"""The user's own data behind the :class:`~ftscale.data.tasks.Task` interface.

A task from a file goes wherever a task name goes (``finetune --task``, ``data show|export``,
a study's ``tasks``). It is described by a :class:`TaskSource`: the data (a file, a
``datasets`` ``save_to_disk`` folder or a hub dataset name; ``ftscale.data.readers``), its
format and field names (``ftscale.data.formats``; detected from the fields when not given), the
prompt template (``ftscale.data.templates``), the dev/test data (files, or sizes carved from one
pool by a hash of the row number) and the generation metrics.

Every record is checked when the task is loaded, so a bad row fails at once, as
``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftscale.data import formats, readers, templates
from ftscale.data.tasks import SPLITS, TASKS_BY_NAME, Example, Task, get_task
from ftscale.errors import UserError

#: Generation metrics a task may name.
METRICS = ("exact_match", "chrf", "bleu", "rougeL")
#: Default metrics by format (test loss is always measured).
FORMAT_METRICS: dict[str, tuple[str, ...]] = {
    "alpaca": ("rougeL", "exact_match"),
    "chat": ("rougeL", "exact_match"),
    "sharegpt": ("rougeL", "exact_match"),
    "prompt_completion": ("exact_match", "chrf"),
    "source_target": ("chrf", "bleu"),
    "text": (),
}
#: The keys of a ``[tasks.NAME]`` table (and of ``TaskSource``).
SOURCE_KEYS = (
    "path",
    "dataset",
    "format",
    "fields",
    "template",
    "dev",
    "test",
    "dev_size",
    "test_size",
    "metric",
    "lang",
)
#: Keys that say where the data lies, not what it is: left out of run keys (the data's content
#: hash is in them instead, so a moved file finds its results and a changed one re-runs).
LOCATION_KEYS = ("path", "dev", "test")


@dataclass(frozen=True)
class TaskSource:
    """Where a user task's data lies and how to read it (all sizes in examples).

    ``path``: a data file, a ``save_to_disk`` folder or a hub dataset name. ``format``: one of
    :data:`ftscale.data.formats.FORMATS` (None: detected). ``fields``: role -> field name
    renames. ``template``: "auto" | "chat" | "plain" | a template string. ``dev``/``test``:
    files of their own, else ``dev_size``/``test_size`` examples are carved from the pool
    (default min(500, 10 %) each). ``metric``: generation metrics (default by format).
    ``lang``: the target language (for BLEU's tokenizer), "und" if unknown.
    """

    path: str
    name: str | None = None
    format: str | None = None
    fields: dict[str, str] | None = None
    template: str = "auto"
    dev: str | None = None
    test: str | None = None
    dev_size: int | None = None
    test_size: int | None = None
    metric: tuple[str, ...] | None = None
    lang: str | None = None
    kind: str | None = field(default=None, repr=False)  # legacy: "translate" | "summarize"

    @property
    def task_name(self) -> str:
        if self.name:
            return self.name
        p = Path(self.path)
        return p.stem if p.suffix.lower() in readers.SUFFIXES else p.name

    def to_dict(self) -> dict[str, Any]:
        """The source as plain JSON values (a run config's ``task_source``)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and k != "kind"}
        if self.metric is not None:
            out["metric"] = list(self.metric)
        if self.template == "auto":
            out.pop("template")
        return out


def make_source(
    spec: str | os.PathLike | Mapping[str, Any],
    *,
    name: str | None = None,
    base: Path | None = None,
) -> TaskSource:
    """A checked :class:`TaskSource` from a path or a ``[tasks.NAME]``-style mapping; relative
    paths are taken from ``base`` (the study file's folder), else the working directory."""
    if isinstance(spec, str | os.PathLike):
        spec = {"path": os.fspath(spec)}
    if isinstance(spec.get("path"), str) and Path(spec["path"]).name == "dataset_info.json":
        from ftscale.data.llamafactory import from_dataset_info

        spec = from_dataset_info(spec, base, name)
    elif spec.get("dataset") is not None:
        raise UserError("`dataset` names an entry of a LLaMA-Factory dataset_info.json `path`")
    unknown = [k for k in spec if k not in (*SOURCE_KEYS, "name")]
    if unknown:
        raise UserError(f"unknown task key {unknown[0]!r} (allowed: {', '.join(SOURCE_KEYS)})")
    if not isinstance(spec.get("path"), str) or not spec["path"]:
        raise UserError("a user task needs `path` (a data file, folder or hub dataset name)")

    def where(p: str | None) -> str | None:
        if p is None:
            return None
        if not isinstance(p, str) or not p:
            raise UserError(f"expected a path, got {p!r}")
        q = Path(p).expanduser()
        if not q.is_absolute() and (base is not None or q.exists() or q.suffix in readers.SUFFIXES):
            q = ((base or Path.cwd()) / q).resolve()
        return str(q) if q.is_absolute() else p  # a hub name stays as given

    fmt = spec.get("format")
    if fmt is not None and fmt not in formats.FORMATS:
        raise UserError(f"unknown data format {fmt!r}; choose one of {', '.join(formats.FORMATS)}")
    fields = spec.get("fields")
    if fields is not None:
        if not isinstance(fields, Mapping):
            raise UserError("fields: expected a table of role = field name")
        if fmt is None:
            raise UserError("fields: give `format` too (which roles the fields fill)")
        formats.field_map(fmt, fields)
    template = spec.get("template", "auto")
    if not isinstance(template, str) or not template:
        raise UserError("template: expected 'auto', 'chat', 'plain' or a template string")
    templates.check_template(template)
    metric = spec.get("metric")
    if metric is not None:
        metric = (metric,) if isinstance(metric, str) else metric
        if not isinstance(metric, list | tuple) or not all(m in METRICS for m in metric):
            raise UserError(f"metric: expected some of {', '.join(METRICS)}, got {metric!r}")
        metric = tuple(metric)
    sizes = {}
    for key in ("dev_size", "test_size"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise UserError(f"{key}: expected a positive integer, got {v!r}")
        sizes[key] = v
    lang = spec.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise UserError(f"lang: expected a language code, got {lang!r}")
    return TaskSource(
        path=where(spec["path"]),
        name=spec.get("name") or name,
        format=fmt,
        fields=dict(fields) if fields else None,
        template=template,
        dev=where(spec.get("dev")),
        test=where(spec.get("test")),
        metric=metric,
        lang=lang,
        **sizes,
    )


def _records(path: str) -> list[readers.Record] | dict[str, list[readers.Record]]:
    p = Path(path)
    if readers.is_saved_dataset(p):
        return readers.read_datasets(readers.load_saved(p), path)
    if p.exists() or p.suffix.lower() in readers.SUFFIXES or os.sep in path and p.is_absolute():
        return readers.read_file(p)
    return readers.read_datasets(readers.load_hub(path), path)


def _examples(
    records: list[readers.Record],
    src: TaskSource,
    where: str,
    fmt: str | None,
    fields: dict[str, str] | None,
) -> tuple[str | None, dict[str, str] | None, list[Example]]:
    """Convert ``records`` (format ``fmt`` with field renames ``fields``; detected from the
    first record if ``fmt`` is None); returns the format, the renames and the examples."""
    if not records:
        return fmt, fields, []
    first_line = records[0][1]
    detected = fmt is None
    if fmt is None:
        shape = formats.detect(records[0][0])
        if shape is None:
            keys = ", ".join(map(str, records[0][0])) or "none"
            raise UserError(
                f"cannot tell the data format from the fields ({keys}); {formats.shape_hint()}",
                path=where,
                line=first_line,
            )
        fmt, fields = shape[0], shape[1] or None
    fmap = formats.field_map(fmt, fields)
    keep_fields = src.template not in templates.TEMPLATES
    out = []
    for rec, line in records:
        if detected:
            other = formats.detect(rec)
            if other != (fmt, fields or {}):
                name = formats.shape_name((fmt, fields or {}))
                what = (
                    f"has the shape of {formats.shape_name(other)}"
                    if other
                    else f"has none of {name}'s fields"
                )
                raise UserError(
                    f"this record {what} ({', '.join(map(str, rec)) or 'no fields'}), but the "
                    f"file's first record (line {first_line}) is {name}: one format per file",
                    path=where,
                    line=line,
                )
        try:
            kw = formats.convert(rec, fmt, fmap)
        except ValueError as exc:
            raise UserError(str(exc), path=where, line=line) from None
        if src.lang and (fmt != "source_target" or kw["lang"] == "und"):
            kw["lang"] = src.lang
        extra = tuple((k, v) for k, v in rec.items() if isinstance(v, str)) if keep_fields else ()
        out.append(Example(**kw, origin=f"{where}:{line}", fields=extra))
    return fmt, fields, out


def _carve(
    rows: list[Example], dev_size: int | None, test_size: int | None, where: str
) -> dict[str, list[Example]]:
    """Split one pool into train/dev/test by a hash of the row number (stable across runs)."""
    n = len(rows)
    if n == 0:
        raise UserError("no examples", path=where)
    default = min(500, n // 10)
    k_dev = dev_size if dev_size is not None else default
    k_test = test_size if test_size is not None else default
    if k_dev < 1 or k_test < 1 or k_dev + k_test >= n:
        raise UserError(
            f"{n} examples are too few to carve dev ({k_dev}) and test ({k_test}) sets and keep "
            "training examples; give dev/test files or smaller dev_size/test_size",
            path=where,
        )
    order = sorted(range(n), key=lambda i: hashlib.blake2b(str(i).encode(), digest_size=8).digest())
    test, dev = set(order[:k_test]), set(order[k_test : k_test + k_dev])
    return {
        "train": [r for i, r in enumerate(rows) if i not in test and i not in dev],
        "dev": [r for i, r in enumerate(rows) if i in dev],
        "test": [r for i, r in enumerate(rows) if i in test],
    }


def load_source(src: TaskSource) -> Task:
    """The :class:`Task` of ``src`` (every record read and checked now)."""
    pool = _records(src.path)
    fmt, fields = src.format, src.fields
    splits: dict[str, list[Example]] = {}
    if isinstance(pool, dict):  # a DatasetDict with its own splits
        for split, recs in pool.items():
            fmt, fields, splits[split] = _examples(recs, src, f"{src.path}[{split}]", fmt, fields)
    else:
        fmt, fields, rows = _examples(pool, src, src.path, fmt, fields)
        if src.dev is None and src.test is None:
            splits = _carve(rows, src.dev_size, src.test_size, src.path)
        else:
            splits["train"] = rows
    for split in ("dev", "test"):
        path = getattr(src, split)
        if path is not None:
            recs = _records(path)
            if isinstance(recs, dict):
                raise UserError(f"{split}: expected one file, got a dataset with splits", path=path)
            _, _, splits[split] = _examples(recs, src, path, fmt, fields)
    if "train" in splits and ("dev" not in splits or "test" not in splits):
        missing = "dev" if "dev" not in splits else "test"
        if src.dev is not None or src.test is not None or isinstance(pool, dict):
            # one eval file given (or a dataset without it): carve the other from train
            rest = _carve(splits["train"], src.dev_size, src.test_size, src.path)
            splits["train"] = rest["train"] + (rest["test"] if missing == "dev" else rest["dev"])
            splits[missing] = rest[missing]
    for s, rows in splits.items():
        if not rows:
            where = getattr(src, s, None) if s in ("dev", "test") else None
            raise UserError(f"split {s!r} is empty", path=where or src.path)
    if fmt is None:
        raise UserError("no examples", path=src.path)
    examples = {s: tuple(rows) for s, rows in splits.items()}
    languages = sorted({e.lang for rows in examples.values() for e in rows}) or ["und"]
    kind = src.kind or ("text" if fmt == "text" else "generate")
    return Task(
        src.task_name,
        kind,
        languages,
        lambda split: examples.get(split, ()),
        counts={s: len(examples.get(s, ())) for s in SPLITS},
        description=f"user data ({fmt}) from {src.path}",
        data_format=fmt,
        template=src.template,
        metric=src.metric if src.metric is not None else FORMAT_METRICS[fmt],
        strict=True,
        where=src.path,
    )


def _stamp(path: str | None) -> tuple:
    if path is None:
        return ()
    try:
        st = Path(path).stat()
    except OSError:
        return (path,)
    return (path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _cached(key: str, stamps: tuple) -> Task:
    d = json.loads(key)
    if d.get("metric") is not None:
        d["metric"] = tuple(d["metric"])
    return load_source(TaskSource(**d))


def task_ref(
    task: str, options: Mapping[str, Any] | None = None, base: Path | None = None
) -> tuple[str, dict[str, Any] | None]:
    """(task name, task source as a dict or None) for a task given as a name or a data path
    with optional source ``options`` (format, fields, template, ...): what a run config holds.
    A string that is no embedded task, no local path, no data file name and no hub-style
    ``owner/name`` is the unknown-task error."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if task in TASKS_BY_NAME and not options:
        return task, None
    if task in TASKS_BY_NAME:
        raise UserError(f"task {task!r} is an embedded task; data options apply to data files")
    if not looks_like_data(task, base):
        if not options:
            return task, None  # a task name: loading it says whether it exists
        get_task(task)  # raises the unknown-task error with the known names
    src = make_source({"path": task, **options}, base=base)
    return src.task_name, src.to_dict()


def task_refs(
    refs: Sequence[str], tables: Mapping[str, Mapping[str, Any]], path: Path | None = None
) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """Task names, and the sources of the user tasks, of a study's ``tasks``: each a task name, a
    data path (:func:`task_ref`, named after the file) or the name of a ``[tasks.NAME]`` table
    (``tables``: :class:`TaskSource` keys). Relative paths are from the study file ``path``;
    errors name the study's key (``tasks.NAME: ...``)."""
    base = path.parent.resolve() if path is not None else None
    where = None if path is None else str(path)
    unused = [n for n in tables if n not in refs]
    if unused:
        raise UserError(f"tasks.{unused[0]}: defined but not in study.tasks", path=where)
    names, sources = [], {}
    for ref in refs:
        try:
            src = make_source(tables[ref], name=ref, base=base) if ref in tables else None
            name, source = (src.task_name, src.to_dict()) if src else task_ref(ref, base=base)
        except UserError as exc:
            key = f"tasks.{ref}" if ref in tables else "study.tasks"
            raise UserError(f"{key}: {exc}", path=where) from None
        if name in names:
            msg = f"study.tasks: two tasks are named {name!r}; name them in [tasks.NAME]"
            raise UserError(msg, path=where)
        names.append(name)
        if source is not None:
            sources[name] = source
    return tuple(names), sources


def looks_like_data(task: str, base: Path | None = None) -> bool:
    """Whether ``task`` names data rather than an embedded task: an existing path (from
    ``base``), a data file name, or a hub-style ``owner/name``."""
    if task in TASKS_BY_NAME:
        return False
    p = Path(task).expanduser()
    here = p if p.is_absolute() or base is None else base / p
    return here.exists() or p.suffix.lower() in readers.SUFFIXES or "/" in task


def resolve_task(ref: str | os.PathLike | Mapping[str, Any] | TaskSource) -> Task:
    """A task from an embedded name, a data path, a ``[tasks.NAME]`` mapping or a
    :class:`TaskSource`; loaded once per process and file version."""
    if isinstance(ref, str) and ref in TASKS_BY_NAME:
        return get_task(ref)
    if isinstance(ref, str | os.PathLike):
        name, source = task_ref(os.fspath(ref))
        if source is None:
            return get_task(name)  # unknown: the error lists the known tasks
        ref = source
    src = ref if isinstance(ref, TaskSource) else make_source(ref)
    d = asdict(src)
    d.pop("kind")
    key = json.dumps(d, sort_keys=True, default=list)
    return _cached(key, _stamp(src.path) + _stamp(src.dev) + _stamp(src.test))


def load_user_task(
    path: str | os.PathLike | Mapping[str, str | os.PathLike],
    source_field: str,
    target_field: str,
    kind: str,
    *,
    name: str | None = None,
    lang: str | None = None,
    lang_field: str | None = None,
    source_lang: str | None = None,
    prompt: str | None = None,
    eval_size: int | None = None,
) -> Task:
    """A source/target task with the embedded tasks' prompts (the library API before file
    tasks): ``kind`` "translate" or "summarize" picks the prompt, or ``prompt`` is a template
    with ``{source}`` (and ``{lang}``); ``lang`` or ``lang_field`` gives the target language;
    ``eval_size`` is the dev and the test size when one pool is split."""
    if kind not in ("translate", "summarize"):
        raise UserError(f"unknown task kind {kind!r}; choose translate or summarize")
    if prompt is not None:
        if "{source}" not in prompt:
            raise UserError("the prompt template must contain {source}")
        try:
            prompt.format(source="", lang="")
        except (KeyError, IndexError, ValueError) as exc:
            raise UserError(
                f"bad prompt template ({exc!r}); only {{source}} and {{lang}} are filled in"
            ) from exc
    fields = {"source": source_field, "target": target_field}
    if lang_field:
        fields["lang"] = lang_field
    if isinstance(path, Mapping):
        unknown = [s for s in path if s not in SPLITS]
        if unknown:
            raise UserError(f"unknown split {unknown[0]!r}; choose train, dev, test")
        if "train" not in path:
            raise UserError("no train split given")
        paths = {s: os.fspath(p) for s, p in path.items()}
        spec = {"path": paths["train"], "dev": paths.get("dev"), "test": paths.get("test")}
    else:
        spec = {"path": os.fspath(path)}
    spec.update(format="source_target", fields=fields, name=name, lang=lang)
    if eval_size is not None:
        spec.update(dev_size=eval_size, test_size=eval_size)
    src = make_source({k: v for k, v in spec.items() if v is not None})
    src = TaskSource(**{**asdict(src), "kind": kind})
    task = load_source(src)
    return Task(
        task.name,
        kind,
        task.languages,
        task._examples,
        source_lang=source_lang,
        prompt_template=prompt,
        counts=task.counts(),
        description=task.description,
    )


def source_identity(source: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A run config's ``task_source`` without where the data lies (:data:`LOCATION_KEYS`)."""
    if source is None:
        return None
    return {k: v for k, v in source.items() if k not in LOCATION_KEYS}


__all__: Sequence[str] = (
    "TaskSource",
    "load_source",
    "load_user_task",
    "looks_like_data",
    "make_source",
    "resolve_task",
    "source_identity",
    "task_ref",
)
