import math

import pytest

from ftscale.finetune.metrics import (
    bleu_tokenizer_for,
    corpus_rouge_l,
    quality,
    rouge_l,
    rouge_tokenize,
)


def test_rouge_tokenizer_keeps_non_latin_scripts():
    assert rouge_tokenize("Grüße aus Köln!") == ["grüße", "aus", "köln"]
    assert rouge_tokenize("我爱北京。") == ["我", "爱", "北", "京"]
    # Devanagari vowel signs are combining marks: words must stay whole
    assert rouge_tokenize("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert rouge_tokenize("Straße 3.5 km") == ["straße", "3", "5", "km"]


def test_rouge_l_hand_computed_values():
    # LCS("the cat sat on the mat", "the cat on the mat") = 5; P = 5/6, R = 5/5
    p, r = 5 / 6, 1.0
    assert rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(
        100 * 2 * p * r / (p + r)
    )
    # German: LCS = 2 of 3 tokens each side
    assert rouge_l("Der Hund läuft schnell", "der Hund rennt schnell") == pytest.approx(75.0)
    # Chinese, character level: 我爱 common of 4 and 4 characters
    assert rouge_l("我爱北京", "我爱上海") == pytest.approx(50.0)
    assert rouge_l("完全不同", "毫无关系") == 0.0
    assert rouge_l("", "etwas") == 0.0
    assert corpus_rouge_l(["a b", "c"], ["a b", "d"]) == pytest.approx(50.0)
    assert math.isnan(corpus_rouge_l([], []))


def test_bleu_chrf_with_signatures_german():
    out = quality(("bleu", "chrf"), ["Das Haus ist klein."], ["Das Haus ist klein."], ["de"])
    assert out["bleu"] == pytest.approx(100.0)
    assert out["chrf"] == pytest.approx(100.0)
    assert "tok:13a" in out["bleu_signature"] and "version:" in out["bleu_signature"]
    assert "nc:6" in out["chrf_signature"]
    worse = quality(("bleu", "chrf"), ["Der Hund ist groß."], ["Das Haus ist klein."], ["de"])
    assert worse["bleu"] < 50 and worse["chrf"] < 50


def test_chinese_bleu_uses_the_zh_tokenizer():
    assert bleu_tokenizer_for(["zh", "zh"]) == "zh"
    assert bleu_tokenizer_for(["de"]) == "13a"
    out = quality(("bleu",), ["我爱北京天安门"], ["我爱北京天安门广场"], ["zh"])
    assert "tok:zh" in out["bleu_signature"]
    # with 13a the sentence would be one token and score 0; per character it overlaps a lot
    assert 40 < out["bleu"] < 100


def test_rouge_only_for_summaries():
    out = quality(("rougeL",), ["我爱北京"], ["我爱上海"], ["zh"])
    assert set(out) == {"rougeL", "rougeL_signature"}
    assert out["rougeL"] == pytest.approx(50.0)
