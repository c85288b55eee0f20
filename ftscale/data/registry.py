"""The registry of embedded tasks: one row per task, shared by the loader and the builder.

A task row says what the task is (kind, languages, metric) and how an example becomes a prompt.
The shipped files ``corpora/tasks/<name>.<split>.jsonl.xz`` hold the examples.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Language codes used in task names and ``Example.lang``, with the names prompts use.
LANG_NAMES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "zh": "Chinese",
    "fr": "French",
    "it": "Italian",
    "es": "Spanish",
    "tr": "Turkish",
    "pt": "Portuguese",
}

TRANSLATE_PROMPT = "Translate {src} to {tgt}:\n{source}\n"
SUMMARIZE_PROMPT = "Summarize the following document in {lang}:\n{source}\n"

METRICS: dict[str, tuple[str, ...]] = {"translate": ("bleu", "chrf"), "summarize": ("rougeL",)}


@dataclass(frozen=True)
class TaskSpec:
    """One registry row.

    ``source_lang`` is None for a multilingual task whose examples carry their own language
    (summarisation: the document and summary share ``Example.lang``). ``zero_shot`` tasks ship a
    test split only: they measure transfer from a model finetuned on another task.
    """

    name: str
    kind: str  # "translate" | "summarize"
    languages: tuple[str, ...]
    source_lang: str | None = None
    zero_shot: bool = False
    description: str = ""

    @property
    def metric(self) -> tuple[str, ...]:
        return METRICS[self.kind]

    def splits(self) -> tuple[str, ...]:
        return ("test",) if self.zero_shot else ("train", "dev", "test")


def _zero_shot(src: str, tgt: str) -> TaskSpec:
    return TaskSpec(
        f"translate-{src}-{tgt}",
        "translate",
        (src, tgt),
        source_lang=src,
        zero_shot=True,
        description=f"zero-shot {LANG_NAMES[src]}->{LANG_NAMES[tgt]} test set (LibreOffice help)",
    )


#: Source languages of the zero-shot sets: the paper's Flores-200 choice (Fr, Zh/De, Hi, Tr,
#: Pt) with Spanish for Hindi: the Hindi help is mostly untranslated (~115 usable test pairs).
ZERO_SHOT_SOURCES: dict[str, tuple[str, ...]] = {
    "de": ("fr", "zh", "es", "tr", "pt"),
    "zh": ("fr", "de", "es", "tr", "pt"),
}

TASKS: tuple[TaskSpec, ...] = (
    TaskSpec(
        "translate-en-de",
        "translate",
        ("en", "de"),
        source_lang="en",
        description="English->German, LibreOffice 7.4 help (MPL-2.0)",
    ),
    TaskSpec(
        "translate-en-zh",
        "translate",
        ("en", "zh"),
        source_lang="en",
        description="English->Chinese (simplified), LibreOffice 7.4 help (MPL-2.0)",
    ),
    TaskSpec(
        "summarize-multi",
        "summarize",
        ("en", "de", "fr", "it"),
        description="Debian package long description -> synopsis, in 4 languages",
    ),
    *(_zero_shot(src, tgt) for tgt, srcs in ZERO_SHOT_SOURCES.items() for src in srcs),
)

TASKS_BY_NAME: dict[str, TaskSpec] = {t.name: t for t in TASKS}


def prompt_for(kind: str, source: str, lang: str, source_lang: str | None) -> str:
    """The text before the target: task instruction + source + newline."""
    if kind == "translate":
        return TRANSLATE_PROMPT.format(
            src=LANG_NAMES.get(source_lang or "", source_lang or "the source language"),
            tgt=LANG_NAMES.get(lang, lang),
            source=source,
        )
    return SUMMARIZE_PROMPT.format(lang=LANG_NAMES.get(lang, lang), source=source)


def related_tasks(task_name: str) -> list[str]:
    """The zero-shot sets that share a translation task's target language (``translate-en-de``
    -> ``translate-fr-de``, ...), for transfer evaluation; empty for other tasks (summarisation,
    user tasks, zero-shot sets themselves)."""
    spec = TASKS_BY_NAME.get(task_name)
    if spec is None or spec.kind != "translate" or spec.zero_shot:
        return []
    tgt = spec.languages[-1]
    return [
        t.name for t in TASKS if t.zero_shot and t.kind == "translate" and t.languages[-1] == tgt
    ]
