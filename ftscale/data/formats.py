"""The shapes people keep finetuning data in, and how one record becomes an :class:`Example`.

Formats (``format = ...`` in a task table, ``--format`` on the command line; detected from the
fields of the first record when not given):

==================== =========================================== ====================================
format               fields (defaults; a field mapping renames)  loss on
==================== =========================================== ====================================
``alpaca``           ``instruction``, ``input``, ``output``,     ``output`` (and every ``history``
                     optional ``system``, ``history``             response)
                     (``[[query, response], ...]``)
``chat``             ``messages``: ``[{role, content}, ...]``     every assistant turn
                     (OpenAI; roles system/user/assistant)
``sharegpt``         ``conversations``: ``[{from, value}, ...]``  every ``gpt`` turn
                     (roles human/gpt/system), optional
                     ``system``
``prompt_completion`` ``prompt``, ``completion`` (TRL; lists of  ``completion``
                     messages make it a chat)
``source_target``    ``source``, ``target``, optional ``lang``   ``target``
``text``             ``text`` (continued pretraining)            every token
==================== =========================================== ====================================

Detection looks at the first record's keys in this order: ``messages`` -> chat,
``conversations`` -> sharegpt, ``instruction`` + ``output`` -> alpaca, ``prompt`` +
``completion`` -> prompt_completion, ``source`` + ``target`` -> source_target, ``text`` -> text.
Every later record must have the same shape (a file mixing shapes is an error at the first
record that differs). Conventions follow LLaMA-Factory's ``dataset_info.json`` (alpaca: the
query is ``instruction`` + newline + ``input``; ShareGPT roles) and TRL's dataset types
(prompt/completion, conversational messages).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ftscale.errors import UserError

FORMATS = ("alpaca", "chat", "sharegpt", "prompt_completion", "source_target", "text")
#: Formats whose examples are conversations (a chat template applies to them).
CHAT_FORMATS = ("alpaca", "chat", "sharegpt")

#: Each format's fields, by role -> default field name. A user's field mapping renames them.
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "alpaca": {
        "instruction": "instruction",
        "input": "input",
        "output": "output",
        "system": "system",
        "history": "history",
    },
    "chat": {"messages": "messages", "role": "role", "content": "content", "system": "system"},
    "sharegpt": {
        "messages": "conversations",
        "role": "from",
        "content": "value",
        "system": "system",
    },
    "prompt_completion": {"prompt": "prompt", "completion": "completion"},
    "source_target": {"source": "source", "target": "target", "lang": "lang"},
    "text": {"text": "text"},
}
#: Chat formats may also rename roles (LLaMA-Factory's ``tags``): a role value -> its meaning.
ROLE_TAGS = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
    "observation_tag": "tool",
    "function_tag": "assistant",
}
#: Fields a record must have (by role); the others are optional.
REQUIRED: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "output"),
    "chat": ("messages",),
    "sharegpt": ("messages",),
    "prompt_completion": ("prompt", "completion"),
    "source_target": ("source", "target"),
    "text": ("text",),
}

#: Chat roles as written in the wild (case-insensitive) -> system | user | assistant | tool.
#: ShareGPT's function_call is the assistant's turn, its observation a tool's answer.
ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "function_call": "assistant",
    "tool": "tool",
    "observation": "tool",
    "function": "tool",
    "ipython": "tool",
}

#: (format, the fields that identify it, renames of the format's default fields): common
#: question/answer pairs read as source/target (a newline between them).
_DETECT: tuple[tuple[str, tuple[str, ...], dict[str, str]], ...] = (
    ("chat", ("messages",), {}),
    ("sharegpt", ("conversations",), {}),
    ("alpaca", ("instruction", "output"), {}),
    ("prompt_completion", ("prompt", "completion"), {}),
    ("source_target", ("source", "target"), {}),
    ("source_target", ("question", "answer"), {"source": "question", "target": "answer"}),
    ("source_target", ("query", "response"), {"source": "query", "target": "response"}),
    ("source_target", ("input", "output"), {"source": "input", "target": "output"}),
    ("text", ("text",), {}),
)
Shape = tuple[str, dict[str, str]]  # (format, field renames)

Turn = tuple[str, str]  # (role, content)


def field_map(fmt: str, fields: Mapping[str, str] | None) -> dict[str, str]:
    """The field names of ``fmt`` with the user's renames applied (unknown role: UserError)."""
    if fmt not in FORMATS:
        raise UserError(f"unknown data format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = dict(DEFAULT_FIELDS[fmt])
    tags = set(ROLE_TAGS) if fmt in ("chat", "sharegpt") else set()
    for role, name in (fields or {}).items():
        if role not in out and role not in tags:
            raise UserError(
                f"format {fmt}: unknown field role {role!r}; its roles are: {', '.join(out)}"
            )
        if not isinstance(name, str) or not name:
            raise UserError(f"format {fmt}: field {role!r} must name a field")
        out[role] = name
    return out


def detect(record: Mapping[str, Any]) -> Shape | None:
    """(format, field renames) of the first shape in the module docstring's order whose fields
    ``record`` has (question/answer, query/response and input/output pairs read as
    source/target), or None."""
    for fmt, keys, renames in _DETECT:
        if all(k in record for k in keys):
            return fmt, dict(renames)
    return None


def shape_name(shape: Shape) -> str:
    fmt, renames = shape
    return f"{fmt} ({'/'.join(renames.values())})" if renames else fmt


def shape_hint() -> str:
    return (
        "expected one of: messages (chat), conversations (sharegpt), instruction+output "
        "(alpaca), prompt+completion, source+target (or question+answer, query+response, "
        "input+output), text; or give format and fields"
    )


def _text(value: Any, what: str) -> str:
    """``value`` as text: a string, or OpenAI-style content parts ``[{type: text, text}]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in value
    ):
        return "".join(p["text"] for p in value)
    raise ValueError(f"{what} is not text ({type(value).__name__})")


def _maybe_json(value: Any) -> Any:
    """A list stored as JSON text (a chat column in a CSV file) -> the list."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _turns(messages: Any, f: dict[str, str]) -> list[Turn]:
    roles = {**ROLES, **{f[tag].lower(): meaning for tag, meaning in ROLE_TAGS.items() if tag in f}}
    messages = _maybe_json(messages)
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"field {f['messages']!r} must be a non-empty list of turns")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            raise ValueError(f"turn {i} of {f['messages']!r} is not an object")
        role = m.get(f["role"])
        key = role.lower() if isinstance(role, str) else role
        if key not in roles:
            raise ValueError(
                f"turn {i}: unknown role {role!r} in field {f['role']!r} "
                f"(known: {', '.join(roles)})"
            )
        content = m.get(f["content"])
        out.append((roles[key], _text("" if content is None else content, f"turn {i} content")))
    return out


def _check_conversation(turns: list[Turn]) -> list[Turn]:
    """Drop turns after the last assistant turn; refuse a chat with no (or an empty) response."""
    last = max((i for i, (r, _) in enumerate(turns) if r == "assistant"), default=None)
    if last is None:
        raise ValueError("the conversation has no assistant turn (nothing to learn)")
    turns = turns[: last + 1]
    for i, (role, content) in enumerate(turns):
        if role == "assistant" and not content.strip():
            raise ValueError(f"turn {i}: empty assistant response")
        if role == "system" and i != 0:
            raise ValueError(f"turn {i}: a system turn must come first")
    if not any(r == "user" for r, _ in turns[:last]):
        raise ValueError("the conversation has no user turn before the assistant's")
    return turns


def convert(record: Mapping[str, Any], fmt: str, f: dict[str, str]) -> dict[str, Any]:
    """One record of format ``fmt`` (field names ``f``) as the keyword arguments of an
    :class:`~ftscale.data.tasks.Example` (``source``, ``target``, ``lang``, ``messages``).
    Raises ValueError with what is wrong; the reader adds file and line."""
    missing = [f[r] for r in REQUIRED[fmt] if record.get(f[r]) is None]
    if missing:
        has = ", ".join(map(str, record)) or "no fields"
        raise ValueError(f"field {missing[0]!r} is missing (the record has: {has})")
    system = record.get(f["system"]) if "system" in f else None
    if system is not None and not isinstance(system, str):
        raise ValueError(f"field {f['system']!r} is not text")
    if fmt == "text":
        text = _text(record[f["text"]], f"field {f['text']!r}")
        if not text.strip():
            raise ValueError(f"field {f['text']!r} is empty")
        return {"source": "", "target": text, "lang": "und", "messages": None}
    if fmt == "source_target":
        src = _text(record[f["source"]], f"field {f['source']!r}")
        tgt = _text(record[f["target"]], f"field {f['target']!r}")
        if not src.strip():
            raise ValueError(f"field {f['source']!r} is empty")
        if not tgt.strip():
            raise ValueError(f"field {f['target']!r} is empty (an empty response)")
        lang = record.get(f["lang"])
        if lang is not None and not isinstance(lang, str):
            raise ValueError(f"field {f['lang']!r} is not text")
        return {"source": src, "target": tgt, "lang": lang or "und", "messages": None}
    if fmt == "prompt_completion":
        p, c = _maybe_json(record[f["prompt"]]), _maybe_json(record[f["completion"]])
        if isinstance(p, list) or isinstance(c, list):  # TRL's conversational prompt/completion
            cf = {"messages": f["prompt"], "role": "role", "content": "content"}
            turns = _turns(p, cf) + _turns(c, {**cf, "messages": f["completion"]})
            return _from_turns(_check_conversation(turns))
        prompt = _text(p, f"field {f['prompt']!r}")
        completion = _text(c, f"field {f['completion']!r}")
        if not prompt.strip():
            raise ValueError(f"field {f['prompt']!r} is empty")
        if not completion.strip():
            raise ValueError(f"field {f['completion']!r} is empty (an empty response)")
        return {"source": prompt, "target": completion, "lang": "und", "messages": None}
    if fmt == "alpaca":
        instruction = _text(record[f["instruction"]], f"field {f['instruction']!r}")
        inp = record.get(f["input"]) or ""
        inp = _text(inp, f"field {f['input']!r}")
        output = _text(record[f["output"]], f"field {f['output']!r}")
        query = instruction + ("\n" + inp if inp.strip() else "")
        if not query.strip():
            raise ValueError(f"fields {f['instruction']!r} and {f['input']!r} are empty")
        turns: list[Turn] = [("system", system)] if system and system.strip() else []
        history = _maybe_json(record.get(f["history"]) or [])
        if not isinstance(history, list):
            raise ValueError(f"field {f['history']!r} must be a list of [query, response] pairs")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise ValueError(f"{f['history']!r}[{i}] is not a [query, response] pair")
            turns += [
                ("user", _text(pair[0], f"{f['history']!r}[{i}][0]")),
                ("assistant", _text(pair[1], f"{f['history']!r}[{i}][1]")),
            ]
        turns += [("user", query), ("assistant", output)]
        return _from_turns(_check_conversation(turns))
    # chat, sharegpt
    turns = _turns(record[f["messages"]], f)
    if system and system.strip() and not (turns and turns[0][0] == "system"):
        turns = [("system", system), *turns]
    return _from_turns(_check_conversation(turns))


def _from_turns(turns: list[Turn]) -> dict[str, Any]:
    user = [c for r, c in turns[:-1] if r == "user"]
    return {"source": user[-1], "target": turns[-1][1], "lang": "und", "messages": tuple(turns)}
