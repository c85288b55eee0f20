"""The report's one source of truth: a list of sections made of a few kinds of block, rendered
to Markdown (:func:`to_markdown`) and to a self-contained HTML page (:func:`to_html`, figures
embedded), so the two never disagree and neither is parsed back from the other.

A folded section is a ``<details>`` element in the page (closed until clicked) and a plain
heading in the Markdown. Text may mark a lead phrase in bold (``Text.lead``); nothing else is
markup, so any message from the analysis can be shown as it is.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Text:
    """A paragraph; ``lead`` (bold) opens it."""

    text: str
    lead: str | None = None


@dataclass
class Heading:
    """A heading inside a section."""

    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    """``headers`` carry the units ("loss (nats/token)"); cells are text."""

    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: Path
    alt: str


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)
    folded: bool = False
    #: an HTML id (the tests and the page's layout find sections by it)
    key: str = ""


Block = Text | Heading | Bullets | Table | Figure


# -- Markdown --------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def _md_block(b: Block) -> list[str]:
    if isinstance(b, Text):
        return [(f"**{b.lead}** " if b.lead else "") + b.text, ""]
    if isinstance(b, Heading):
        return [f"### {b.text}", ""]
    if isinstance(b, Bullets):
        return [f"- {s}" for s in b.items] + [""]
    if isinstance(b, Table):
        out = ["| " + " | ".join(map(_md_cell, b.headers)) + " |", "|" + "---|" * len(b.headers)]
        out += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b.rows]
        return [*out, ""]
    return [f"![{b.alt}]({b.path.name})", ""]


def to_markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown: figures referenced by file name beside it."""
    lines = [f"# {title}", ""]
    for s in sections:
        if s.title:
            lines += [f"## {s.title}", ""]
        for b in s.blocks:
            lines += _md_block(b)
    return "\n".join(lines).rstrip("\n") + "\n"


# -- HTML ------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:0 auto;padding:.4em 1.2em;"
    "color:#222;line-height:1.35}h1{font-size:1.35em;margin:.3em 0}h2{font-size:1.1em;"
    "margin:.7em 0 .3em}table{border-collapse:collapse;margin:.5em 0;font-size:.85em}"
    "td,th{border:1px solid #ccc;padding:2px 7px;text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%}figure{margin:.4em 0}li{margin:.2em 0}p{margin:.4em 0}"
    "details{margin:.3em 0;border-top:1px solid #ddd}summary{cursor:pointer;padding:.3em 0}"
    "summary h2{display:inline;font-size:1.05em}h3{font-size:1em;margin:.6em 0 .2em}"
    "#answer{background:#f4faf6;border-left:4px solid #2a7;padding:.3em .9em}"
    ".first{display:flex;gap:1.4em;align-items:flex-start}.first>section{flex:1 1 0}"
    ".first>section#answer-figure{flex:0 0 620px}"
)


def _html_block(b: Block, folder: Path) -> str:
    if isinstance(b, Text):
        lead = f"<b>{html.escape(b.lead)}</b> " if b.lead else ""
        return f"<p>{lead}{html.escape(b.text)}</p>"
    if isinstance(b, Heading):
        return f"<h3>{html.escape(b.text)}</h3>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in b.items) + "</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in b.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    data = base64.b64encode((folder / b.path.name).read_bytes()).decode()
    return f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}"></figure>'


def _html_section(s: Section, folder: Path) -> str:
    ident = f' id="{html.escape(s.key)}"' if s.key else ""
    body = "\n".join(_html_block(b, folder) for b in s.blocks)
    if s.folded:
        return (
            f"<details{ident}><summary><h2>{html.escape(s.title)}</h2></summary>\n{body}\n"
            "</details>"
        )
    head = f"<h2>{html.escape(s.title)}</h2>\n" if s.title else ""
    return f"<section{ident}>{head}{body}</section>"


def to_html(title: str, sections: list[Section], folder: Path, first: int = 0) -> str:
    """A self-contained page: the figures embedded as base64 PNG. The ``first`` sections after
    the opening one sit side by side under it (the first screen: the figure beside what to do)."""
    parts = []
    rest = list(sections)
    if rest:
        parts.append(_html_section(rest.pop(0), folder))
    if first:
        side = "\n".join(_html_section(s, folder) for s in rest[:first])
        parts.append(f'<div class="first">{side}</div>')
        rest = rest[first:]
    parts += [_html_section(s, folder) for s in rest]
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
        f"{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
