"""Prompt templates: how an example becomes text segments, and which of them carry the loss.

A segment is ``(text, trained, eos)``: ``trained`` segments carry the loss (the response
tokens, as TRL's completion-only collator and LLaMA-Factory's default do; in a multi-turn
chat, every assistant turn), ``eos`` appends the tokenizer's end-of-sequence token to the
segment (trained with it, so the model learns to stop).

The template of a task (``template = ...``):

- ``"auto"`` (default): conversations (alpaca, chat, sharegpt data) get the model's own chat
  template when its tokenizer has one, else the neutral :func:`plain` template;
  prompt/completion data is the prompt followed by the completion (TRL's convention for
  non-conversational data); source/target data is ``{source}`` and a newline before the
  target; text is trained on every token.
- ``"chat"``: the model's chat template for every format (an error for a tokenizer without one).
- ``"plain"``: the neutral template, even for a model with a chat template.
- any other string: the user's template for each user turn, with ``{prompt}`` (the turn's
  text; ``{source}`` is the same), ``{system}`` and the record's own text fields; the response
  follows it directly.

The neutral template has no task wording: ``{system}\\n\\n`` once, then per exchange
``User: {prompt}\\nAssistant: {response}<eos>``, exchanges separated by a newline.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from ftscale.errors import UserError

Segment = tuple[str, bool, bool]  # (text, trained, append eos)
TEMPLATES = ("auto", "chat", "plain")


def check_template(template: str) -> None:
    """UserError for a custom template that would fail to fill."""
    if template in TEMPLATES:
        return
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise UserError(f"bad template ({exc}); use {{prompt}}, {{system}} or a field") from None
    if not names & {"prompt", "source"}:
        raise UserError(
            "a template must contain {prompt} (the user's text); "
            f"or use one of {', '.join(TEMPLATES)}"
        )
    if any(not n.isidentifier() for n in names):
        raise UserError("template placeholders must be field names, e.g. {prompt}")


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""


def plain(
    turns: tuple[tuple[str, str], ...], custom: str | None = None, fields: Mapping | None = None
) -> list[Segment]:
    """Segments of a conversation with the neutral template, or the user's ``custom`` one."""
    segs: list[Segment] = []
    system = turns[0][1] if turns and turns[0][0] == "system" else ""
    body = turns[1:] if system else turns
    if system and not (custom and "{system}" in custom):
        segs.append((system + "\n\n", False, False))
    first = True
    for role, content in body:
        if role in ("user", "tool"):
            label = "User" if role == "user" else "Tool"
            if custom is None:
                text = ("" if first else "\n") + f"{label}: {content}\nAssistant: "
            else:
                values = _Fields({k: v for k, v in (fields or {}).items() if isinstance(v, str)})
                values.update(prompt=content, source=content, system=system)
                text = ("" if first else "\n") + custom.format_map(values)
            # consecutive user turns are joined; the text before a response is never trained
            if segs and not segs[-1][1]:
                segs[-1] = (segs[-1][0] + text, False, False)
            else:
                segs.append((text, False, False))
            first = False
        elif role == "assistant":
            segs.append((content, True, True))
    return segs


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _render(tokenizer: Any, turns: list[tuple[str, str]], generation: bool) -> str:
    messages = [{"role": r, "content": c} for r, c in turns]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def chat(tokenizer: Any, turns: tuple[tuple[str, str], ...]) -> list[Segment]:
    """Segments of a conversation with the tokenizer's chat template: each assistant turn is
    the text its render adds after the generation prompt (its end-of-turn marker included).
    A template that rewrites earlier turns (the prefixes do not nest) trains the last turn only."""
    segs: list[Segment] = []
    done = ""
    turns = list(turns)
    try:
        for i, (role, _) in enumerate(turns):
            if role != "assistant":
                continue
            prefix = _render(tokenizer, turns[:i], True)
            full = _render(tokenizer, turns[: i + 1], False)
            if not (full.startswith(prefix) and prefix.startswith(done)):
                prefix = _render(tokenizer, turns[:-1], True)
                full = _render(tokenizer, turns, False)
                if not full.startswith(prefix):
                    raise UserError("the model's chat template does not render the response last")
                return [(prefix, False, False), (full[len(prefix) :], True, False)]
            segs.append((prefix[len(done) :], False, False))
            segs.append((full[len(prefix) :], True, False))
            done = full
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - jinja errors of a template: the data's shape
        msg = " ".join(str(exc).split())[:200]
        raise UserError(f"the model's chat template refused this conversation ({msg})") from None
    return segs
