"""The builder's assembly step and parsers, on small fixtures (no network, no packages)."""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
from pathlib import Path

import pytest

from ftscale.data.builder import assemble as A
from ftscale.data.builder import extract as E
from ftscale.data.overlap import LeakFinder, normalize

WORDS = [
    "window",
    "menu",
    "table",
    "cell",
    "chart",
    "page",
    "frame",
    "style",
    "field",
    "record",
    "sheet",
    "text",
]
WORDS_DE = [
    "Fenster",
    "Menü",
    "Tabelle",
    "Zelle",
    "Diagramm",
    "Seite",
    "Rahmen",
    "Vorlage",
    "Feld",
    "Datensatz",
    "Blatt",
]
ZH = "窗口菜单表格单元图表页面框架样式字段记录工作表文本"


def _raw(n: int = 400) -> A.Raw:
    """A small multi-way aligned help, descriptions in four languages, a few documents."""
    keys = [(f"text/page{i % 7}.html", f"par_id{1000 + i}") for i in range(n)]
    help_: dict[str, dict] = {lang: {} for lang in ("en", "de", "zh", "fr", "es", "tr", "pt")}
    for i, k in enumerate(keys):
        w = [WORDS[(i * j + 3) % len(WORDS)] for j in range(1, 4 + i % 5)]
        d = [WORDS_DE[(i * j + 3) % len(WORDS_DE)] for j in range(1, 4 + i % 5)]
        help_["en"][k] = f"Select the {' '.join(w)} number {i}."
        help_["de"][k] = f"Wählen Sie {' '.join(d)} Nummer {i}."
        help_["zh"][k] = f"选择{ZH[i % 10 : i % 10 + 4]}第{i}号。"
        for lang, word in (
            ("fr", "Sélectionnez"),
            ("es", "Seleccione"),
            ("tr", "Seçin"),
            ("pt", "Selecione"),
        ):
            help_[lang][k] = f"{word} {'-'.join(d).lower()} numéro {i}."
    help_["de"][keys[5]] = help_["en"][keys[5]]  # an untranslated segment: must be dropped
    desc: dict[str, dict] = {lang: {} for lang in ("en", "de", "fr", "it", "zh")}
    for i in range(600):
        md5 = hashlib.md5(str(i).encode()).hexdigest()
        body = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(30))
        desc["en"][md5] = (f"tool number {i} for tables", f"This package {i} provides {body}.")
        body_de = " ".join(WORDS_DE[(i + j) % len(WORDS_DE)] for j in range(30))
        desc["de"][md5] = (
            f"Werkzeug Nummer {i} für Tabellen",
            f"Dieses Paket {i} bietet {body_de}.",
        )
        desc["fr"][md5] = (f"outil numéro {i} pour tableaux", f"Ce paquet {i} fournit {body_de}.")
        desc["it"][md5] = (
            f"strumento numero {i} per tabelle",
            f"Questo pacchetto {i} offre {body_de}.",
        )
        if i % 10 == 0:
            desc["zh"][md5] = (f"表格工具{i}号", f"本软件包{i}提供{ZH}。\n{ZH}{i}。")
    mono = {
        "en": [("man:a", "First line of a manual.\nSecond line.")],
        "de": [("man:b", "Erste Zeile.\nZweite Zeile.")],
        "zh": [("man:c", "第一行。\n第二行。")],
    }
    bilingual = {"en-de": [("bible:1", "In the beginning.\nIm Anfang.")], "en-zh": []}
    return A.Raw(help=help_, descriptions=desc, mono=mono, bilingual=bilingual)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read(path: Path) -> list:
    return [json.loads(x) for x in lzma.decompress(path.read_bytes()).decode().splitlines()]


@pytest.mark.slow
def test_builder_is_deterministic_and_leak_free(tmp_path):
    raw = _raw()
    tasks = A.build_tasks(raw)
    test_item = tasks["translate-en-de"]["test"][0]
    # Plant a test target and a summarisation test paragraph inside pretraining documents.
    sum_test = tasks["summarize-multi"]["test"][0]
    raw.mono["de"].append(("man:leak", f"Harmless line.\n{test_item['target']}"))
    raw.mono["en"].append(("man:leak2", f"Intro.\nSee: {sum_test['source']} (copied)"))
    sources = [{"name": "fixture", "kind": "test", "version": "1", "sha256": "0" * 64}]
    m1 = A.assemble(raw, tmp_path / "a", sources, {"fixture": "public domain\n"})
    m2 = A.assemble(_raw_with_plants(raw), tmp_path / "b", sources, {"fixture": "public domain\n"})
    assert m1 == m2
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and a == b  # byte-identical
    assert "LICENSES/fixture.txt" in a and "MANIFEST.json" in a

    de_docs = _read(tmp_path / "a/pretrain/de.train.jsonl.xz") + _read(
        tmp_path / "a/pretrain/de.heldout.jsonl.xz"
    )
    en_docs = _read(tmp_path / "a/pretrain/en.train.jsonl.xz") + _read(
        tmp_path / "a/pretrain/en.heldout.jsonl.xz"
    )
    assert any("Harmless line." in d for d in de_docs)  # the document stays ...
    assert not any(
        normalize(test_item["target"]) in normalize(d) for d in de_docs
    )  # ... not the item
    assert any("Intro." in d for d in en_docs)
    assert not any(normalize(sum_test["source"].split("\n")[0]) in normalize(d) for d in en_docs)

    # No dev/test string of any task in any training split; the untranslated segment is gone.
    shipped = {}
    for f in sorted((tmp_path / "a/tasks").glob("*.jsonl.xz")):
        name, split = f.name[: -len(".jsonl.xz")].rsplit(".", 1)
        shipped.setdefault(name, {})[split] = _read(f)
    evals = A.evaluation_strings(shipped)
    for splits in shipped.values():
        for r in splits.get("train", []):
            assert normalize(r["source"]) not in evals and normalize(r["target"]) not in evals
    assert all(
        normalize(r["source"]) != normalize(r["target"])
        for r in shipped["translate-en-de"]["train"]
    )
    assert set(shipped["translate-fr-de"]) == {"test"}
    assert {r["lang"] for r in shipped["summarize-multi"]["train"]} == {"en", "de", "fr", "it"}


def _raw_with_plants(raw: A.Raw) -> A.Raw:
    """A fresh copy built the same way: the second run must not depend on the first."""
    again = _raw()
    again.mono = {k: list(v) for k, v in raw.mono.items()}
    return again


def test_interrupted_build_keeps_previous_files(tmp_path, monkeypatch):
    raw = _raw(200)
    out = tmp_path / "corpora"
    A.assemble(raw, out, [], {})
    before = _files(out)
    calls = {"n": 0}
    real = A._xz_jsonl

    def failing(rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(rows)

    monkeypatch.setattr(A, "_xz_jsonl", failing)
    with pytest.raises(KeyboardInterrupt):
        A.assemble(raw, out, [], {"changed": "x"})
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["corpora"]  # no temp folder left


def test_help_page_parser_keeps_segments_and_skips_mac_variants(tmp_path):
    page = tmp_path / "text" / "p.html"
    page.parent.mkdir()
    page.write_text(
        '<html><body><h1 id="hd_id1" dir="auto">Find Bar</h1>'
        '<p id="par_id2">Press <span class="switchinline"><span hidden="true" class="MAC">'
        '<span class="keycode">Cmd</span></span><span class="default">'
        '<span class="keycode">Ctrl</span></span></span>+F to<br> search.</p>'
        '<p id="other">not a segment</p><p id="par_id3"><img src="x.svg" alt="icon"></p>'
        "</body></html>",
        encoding="utf-8",
    )
    segs = E.libreoffice_segments(tmp_path)
    assert segs == {
        ("text/p.html", "hd_id1"): "Find Bar",
        ("text/p.html", "par_id2"): "Press Ctrl+F to search.",
    }


def test_debian_translation_parser():
    text = (
        "Package: foo\nDescription-md5: abc\nDescription-de: Ein Werkzeug\n"
        " Erste Zeile des\n Absatzes.\n .\n Zweiter Absatz.\n  verbatim line\n\n"
        "Package: bar\nDescription-md5: def\nDescription-de: Kurz\n"
    )
    d = E.debian_descriptions(text)
    assert d[("foo", "abc")] == (
        "Ein Werkzeug",
        "Erste Zeile des Absatzes.\nZweiter Absatz.\nverbatim line",
    )
    assert d[("bar", "def")] == ("Kurz", "")


def test_roff_to_text_and_man_pages(tmp_path):
    src = (
        '.\\" comment\n.TH LS 1\n.SH NAME\nls \\- list directory\n.SH DESCRIPTION\n'
        ".PP\nList \\fBfiles\\fP in the\ndirectory.\n.TP\n\\fB\\-a\\fR\nall entries\n"
    )
    assert E.roff_to_text(src) == (
        "NAME\nls - list directory\nDESCRIPTION\nList files in the directory.\n-a all entries"
    )
    (tmp_path / "man1").mkdir()
    (tmp_path / "man1" / "ls.1.gz").write_bytes(gzip.compress(src.encode()))
    (tmp_path / "man1" / "dir.1.gz").write_bytes(gzip.compress(b".so man1/ls.1\n"))
    assert list(E.man_pages(tmp_path)) == ["man1/ls.1"]


def test_leak_finder_exact_and_contained():
    f = LeakFinder(
        ["Click OK", "Select the cells you want to format now", "选择要设置格式的单元格范围"]
    )
    assert f.leaks("  click   ok ")
    assert not f.leaks("Then click OK twice")  # short items only match whole lines
    assert f.leaks("First, select the cells you want to format now, then press Enter.")
    assert f.leaks("首先选择要设置格式的单元格范围，然后按回车。")
    assert not f.leaks("Select the cells you want")


def test_filters():
    assert not A.usable_source('oDoc.setValue("A1", "Hello")')
    assert not A.usable_source("%1")
    assert A.usable_source("Opens the Find toolbar.")
    assert not A.is_translated("Opens the toolbar.", "Opens the toolbar.", "de")
    assert not A.is_translated("Opens the toolbar now.", "Opens the toolbar.", "zh")
    assert A.is_translated("打开工具栏。", "Opens the toolbar.", "zh")
    assert A.n_words("打开工具栏") == 3
    assert A.chunk("d", "a\nb\nc", max_chars=3) == [("d#0", "a"), ("d#1", "b"), ("d#2", "c")]


def _write_mo(path: Path, catalog: dict[str, str]) -> None:
    """A minimal GNU .mo file (little endian, no hash table)."""
    import struct

    keys = sorted(catalog)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(catalog[k].encode() + b"\0" for k in keys)
    n = len(keys)
    start = 7 * 4 + 16 * n
    offsets, o1, o2 = [], 0, 0
    for k in keys:
        offsets.append((len(k.encode()), start + o1, len(catalog[k].encode()), 0))
        o1 += len(k.encode()) + 1
    id_table = b"".join(struct.pack("<2I", ln, off) for ln, off, _, _ in offsets)
    str_table = b""
    for k in keys:
        v = catalog[k].encode()
        str_table += struct.pack("<2I", len(v), start + len(ids) + o2)
        o2 += len(v) + 1
    header = struct.pack("<7I", 0x950412DE, 0, n, 28, 28 + 8 * n, 0, 0)
    path.write_bytes(header + id_table + str_table + ids + strs)


def test_gettext_catalogue_pairs(tmp_path):
    mo = tmp_path / "x.mo"
    _write_mo(
        mo,
        {
            "": "Content-Type: text/plain; charset=UTF-8\n",
            "Open file": "Datei öffnen",
            "Same": "Same",
        },
    )
    assert E.mo_pairs(mo) == [("Open file", "Datei öffnen")]  # header and untranslated dropped


def test_bible_verses_from_sqlite(tmp_path):
    import sqlite3

    db = tmp_path / "bible.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE bible (id INTEGER, bbName TEXT, bNumber INTEGER, cNumber INTEGER,"
        " vNumber INTEGER, vText TEXT)"
    )
    con.executemany(
        "INSERT INTO bible VALUES (?,?,?,?,?,?)",
        [
            (1, "k", 1, 1, 2, "And the earth"),
            (2, "k", 1, 1, 1, " In  the beginning "),
            (3, "e", 1, 1, 1, "Im Anfang"),
        ],
    )
    con.commit()
    con.close()
    assert E.bible_verses(db, "k") == {(1, 1, 1): "In the beginning", (1, 1, 2): "And the earth"}


def test_builder_commands_fail_as_user_errors(tmp_path):
    from ftscale.data.builder import sources
    from ftscale.errors import UserError

    with pytest.raises(UserError, match="failed: boom"):
        sources._run(["sh", "-c", "echo boom >&2; exit 3"], tmp_path)
    with pytest.raises(UserError, match="not installed"):
        sources._run(["ftscale-no-such-tool"], tmp_path)
