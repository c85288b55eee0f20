"""Generation-quality metrics: BLEU and chrF (sacrebleu, with signatures) and ROUGE-L.

ROUGE-L is implemented here because the stock ``rouge-score`` tokeniser keeps only ``[a-z0-9]``
and so scores German umlauts partly and Chinese, Arabic or Hindi text not at all. Ours lowercases,
splits on Unicode word characters, and treats every CJK character (and kana, hangul) as its own
token, i.e. character-level ROUGE for Chinese. Scores are percentages (0-100), like sacrebleu's.
"""

from __future__ import annotations

import re
import unicodedata

# One token per CJK ideograph / kana / hangul syllable (character-level, as usual for Chinese).
_CJK = re.compile(
    "[\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)


def _is_word_char(ch: str) -> bool:
    # Letters, digits and combining marks: Python's \w omits marks (Mn/Mc), which would split
    # Hindi or Arabic words at every vowel sign.
    return unicodedata.category(ch)[0] in "LMN"


def rouge_tokenize(text: str) -> list[str]:
    """Lowercased tokens: CJK characters one by one, other scripts as runs of letters, digits
    and combining marks (so Hindi and Arabic words stay whole); punctuation is dropped."""
    text = unicodedata.normalize("NFKC", text).lower()
    tokens: list[str] = []
    word: list[str] = []
    for ch in text:
        if _CJK.match(ch):
            if word:
                tokens.append("".join(word))
                word = []
            tokens.append(ch)
        elif _is_word_char(ch):
            word.append(ch)
        elif word:
            tokens.append("".join(word))
            word = []
    if word:
        tokens.append("".join(word))
    return tokens


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hypothesis: str, reference: str) -> float:
    """Sentence ROUGE-L F1 (beta = 1) in percent, on :func:`rouge_tokenize` tokens."""
    h, r = rouge_tokenize(hypothesis), rouge_tokenize(reference)
    lcs = _lcs_length(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return 100.0 * 2 * p * rec / (p + rec)


def corpus_rouge_l(hypotheses: list[str], references: list[str]) -> float:
    """Mean sentence ROUGE-L F1 over the pairs, in percent (what rouge-score's aggregate means)."""
    if len(hypotheses) != len(references):
        raise ValueError("hypotheses and references differ in length")
    if not hypotheses:
        return float("nan")
    return sum(rouge_l(h, r) for h, r in zip(hypotheses, references, strict=True)) / len(hypotheses)


def normalize_answer(text: str) -> str:
    """Text for exact match: NFKC, case-folded, whitespace runs as one space, trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_match(hypotheses: list[str], references: list[str]) -> float:
    """Percent of hypotheses equal to their reference after :func:`normalize_answer`."""
    if len(hypotheses) != len(references):
        raise ValueError("hypotheses and references differ in length")
    if not hypotheses:
        return float("nan")
    hits = sum(
        normalize_answer(h) == normalize_answer(r)
        for h, r in zip(hypotheses, references, strict=True)
    )
    return 100.0 * hits / len(hypotheses)


def bleu_tokenizer_for(langs: list[str]) -> str:
    """sacrebleu tokenizer for targets in ``langs``: "zh" for Chinese, "ja-mecab" is not assumed
    installed so Japanese and Korean use "char"; "13a" otherwise."""
    langs = {lang.split("-")[0].split("_")[0].lower() for lang in langs}
    if langs and langs <= {"zh"}:
        return "zh"
    if langs and langs <= {"ja", "ko", "zh"}:
        return "char"
    return "13a"


def quality(
    metrics: tuple[str, ...] | list[str],
    hypotheses: list[str],
    references: list[str],
    langs: list[str],
) -> dict[str, float | str | None]:
    """Corpus scores for the metric names in ``metrics`` ("bleu", "chrf", "rougeL",
    "exact_match").

    Returns ``{"bleu": ..., "bleu_signature": ..., "chrf": ..., "chrf_signature": ...,
    "rougeL": ..., "rougeL_signature": ...}`` for the metrics asked; scores are percentages.
    """
    out: dict[str, float | str | None] = {}
    if "bleu" in metrics or "chrf" in metrics:
        from sacrebleu.metrics import BLEU, CHRF

        if "bleu" in metrics:
            bleu = BLEU(tokenize=bleu_tokenizer_for(langs))
            out["bleu"] = float(bleu.corpus_score(hypotheses, [references]).score)
            out["bleu_signature"] = str(bleu.get_signature())
        if "chrf" in metrics:
            chrf = CHRF()
            out["chrf"] = float(chrf.corpus_score(hypotheses, [references]).score)
            out["chrf_signature"] = str(chrf.get_signature())
    if "rougeL" in metrics:
        out["rougeL"] = corpus_rouge_l(hypotheses, references)
        out["rougeL_signature"] = "rougeL|tok:ftscale-unicode-cjkchar|lc:yes|f1|mean"
    if "exact_match" in metrics:
        out["exact_match"] = exact_match(hypotheses, references)
        out["exact_match_signature"] = "em|nfkc|casefold|ws:collapse|percent"
    return out
