"""Leak checks between evaluation items and training text.

Used twice: by the builder, to keep every dev/test item out of every training split and out of
the pretraining text, and by the tests, to verify the shipped files. Text is compared after
:func:`normalize` (case folded, whitespace collapsed).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WS = re.compile(r"\s+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

#: An item of at least this many words is also searched for inside longer lines.
ANCHOR_WORDS = 5
#: A CJK item of at least this many characters is also searched for inside longer lines.
ANCHOR_CHARS = 10


def normalize(text: str) -> str:
    """Case-fold and collapse whitespace: the form in which two texts count as "the same"."""
    return _WS.sub(" ", text).strip().casefold()


class LeakFinder:
    """Finds evaluation items inside other text.

    A line of text leaks an item when the normalised line equals the normalised item, or when
    the line contains an item long enough to be searched for (>= ``ANCHOR_WORDS`` words, or
    >= ``ANCHOR_CHARS`` characters for text with CJK script). Short items inside longer lines
    ("Click OK") are not searched for: they are common phrases, not leaked examples.
    """

    def __init__(self, items: Iterable[str]):
        self.exact: set[str] = set()
        self._by_words: dict[tuple[str, ...], list[str]] = {}
        self._by_chars: dict[str, list[str]] = {}
        for item in items:
            n = normalize(item)
            if not n:
                continue
            self.exact.add(n)
            if _CJK.search(n):
                if len(n) >= ANCHOR_CHARS:
                    self._by_chars.setdefault(n[:ANCHOR_CHARS], []).append(n)
            else:
                words = n.split(" ")
                if len(words) >= ANCHOR_WORDS:
                    self._by_words.setdefault(tuple(words[:ANCHOR_WORDS]), []).append(n)

    def leaks(self, line: str) -> bool:
        """True if ``line`` equals or contains an item (see the class docstring)."""
        n = normalize(line)
        if n in self.exact:
            return True
        if self._by_words:
            words = n.split(" ")
            for i in range(len(words) - ANCHOR_WORDS + 1):
                cands = self._by_words.get(tuple(words[i : i + ANCHOR_WORDS]))
                if cands and any(c in n for c in cands):
                    return True
        if self._by_chars and _CJK.search(n):
            for i in range(len(n) - ANCHOR_CHARS + 1):
                cands = self._by_chars.get(n[i : i + ANCHOR_CHARS])
                if cands and any(c in n for c in cands):
                    return True
        return False
