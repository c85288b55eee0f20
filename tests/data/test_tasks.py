"""The embedded task registry, splits, subsets and prompts (over the shipped files)."""

from __future__ import annotations

import pytest

from ftscale.data import Example, get_task, list_tasks
from ftscale.data.registry import ZERO_SHOT_SOURCES
from ftscale.errors import UserError


def test_registry_lists_the_issue_tasks():
    names = list_tasks()
    assert {"translate-en-de", "translate-en-zh", "summarize-multi"} <= set(names)
    for tgt, srcs in ZERO_SHOT_SOURCES.items():
        assert len(srcs) >= 4 and "en" not in srcs
        for src in srcs:
            assert f"translate-{src}-{tgt}" in names


def test_task_attributes():
    t = get_task("translate-en-de")
    assert (t.kind, t.languages, t.metric) == ("translate", ("en", "de"), ("bleu", "chrf"))
    s = get_task("summarize-multi")
    assert s.kind == "summarize" and s.metric == ("rougeL",) and len(s.languages) >= 3
    assert get_task("translate-en-de") is t  # cached per process


def test_unknown_task_and_split():
    with pytest.raises(UserError, match="unknown task 'translate-en-xx'"):
        get_task("translate-en-xx")
    with pytest.raises(UserError, match="unknown split 'validation'"):
        get_task("translate-en-de").split("validation")


def test_zero_shot_tasks_have_only_a_test_split():
    t = get_task("translate-fr-de")
    assert t.counts()["train"] == 0 and t.counts()["test"] >= 400
    with pytest.raises(UserError, match="is empty"):
        t.split("train")
    with pytest.raises(UserError, match="no training split"):
        t.subset(10, 0)
    ex = t.split("test")[0]
    assert t.prompt(ex) == f"Translate French to German:\n{ex.source}\n"


def test_prompts():
    t = get_task("translate-en-zh")
    ex = t.split("dev")[0]
    assert isinstance(ex, Example) and ex.lang == "zh"
    assert t.prompt(ex) == f"Translate English to Chinese:\n{ex.source}\n"
    s = get_task("summarize-multi")
    de = next(e for e in s.split("test") if e.lang == "de")
    assert s.prompt(de).startswith("Summarize the following document in German:\n")


def test_counts_match_loaded_splits():
    t = get_task("translate-en-zh")
    counts = t.counts()
    for split in ("train", "dev", "test"):
        assert len(t.split(split)) == counts[split]


def test_subsets_are_deterministic_nested_and_bounded():
    t = get_task("translate-en-de")
    small, large = t.subset(1000, 1), t.subset(10000, 1)
    assert small == large[:1000]
    assert set(small) <= set(large)
    assert t.subset(1000, 1) == small  # deterministic
    assert t.subset(1000, 2) != small  # the seed matters
    assert len(set(t.subset(5000, 3))) == 5000  # no repeats
    n = t.counts()["train"]
    assert len(t.subset(n, 0)) == n
    with pytest.raises(UserError, match="larger than the training split"):
        t.subset(n + 1, 0)
    with pytest.raises(UserError, match="seed must be an integer"):
        t.subset(10, "one")
    for bad in (0, -5, 2.5, True):
        with pytest.raises(UserError, match="positive integer"):
            t.subset(bad, 0)


def test_data_hash_is_stable_and_distinguishes_splits():
    t = get_task("translate-en-de")
    h = t.data_hash("dev")
    assert len(h) == 64 and h == t.data_hash("dev") and h != t.data_hash("test")


def test_split_returns_a_copy():
    t = get_task("translate-en-de")
    dev = t.split("dev")
    dev.clear()
    assert t.split("dev")


def test_pretraining_bad_split_and_unknown_stream():
    from ftscale.data import load_pretraining

    with pytest.raises(UserError, match="unknown pretraining split 'dev'"):
        load_pretraining("dev")
    with pytest.raises(UserError, match="unknown pretraining stream 'fr'"):
        load_pretraining("train", ["en", "fr"])
    assert list(load_pretraining("heldout", ["en-zh"])) == ["en-zh"]
