"""Encoding user tasks: loss on the responses only (every assistant turn), chat templates,
the truncation rule and the over-long response error."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from ftscale.data.user import resolve_task
from ftscale.errors import UserError
from ftscale.finetune.batching import encode, make_batch

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tokenizer():
    from ftscale.models import load_tokenizer

    return load_tokenizer("ftlm-1")


@pytest.fixture
def chat_tokenizer(tokenizer):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = CHATML
    return tok


def _task(tmp_path, rows, name="d.jsonl", **src):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return resolve_task({"path": str(path), **src}) if src else resolve_task(str(path))


def _conv(i):
    return {
        "conversations": [
            {"from": "human", "value": f"add {i} and 1"},
            {"from": "gpt", "value": f"{i + 1}"},
            {"from": "human", "value": "double it"},
            {"from": "gpt", "value": f"{2 * (i + 1)}"},
        ]
    }


def _trained_text(tok, enc, i):
    mask = enc.masks[i] if enc.masks is not None and enc.masks[i] is not None else None
    ids = enc.ids[i]
    if mask is None:
        return tok.decode(ids[enc.n_prompt[i] :])
    return tok.decode(ids[mask])


def test_every_assistant_turn_carries_the_loss_plain(tmp_path, tokenizer):
    task = _task(tmp_path, [_conv(i) for i in range(30)])
    ex = task.split("train")[:3]
    enc = encode(tokenizer, task, ex, 256)
    assert enc.template == "plain" and enc.truncated == 0
    for i, e in enumerate(ex):
        trained = _trained_text(tokenizer, enc, i).replace(" ", "")
        eos = tokenizer.eos_token
        assert trained == f"{e.messages[1][1]}{eos}{e.messages[3][1]}{eos}".replace(" ", "")
        # the generation prompt is everything before the last response
        assert tokenizer.decode(enc.ids[i][: enc.n_prompt[i]]).endswith("Assistant: ")
    batch = make_batch(enc, [0, 1], 0, tokenizer.pad_token_id or 0)
    assert batch.n_target == int(sum(m.sum() for m in enc.masks[:2]))


def test_the_models_chat_template_is_used_for_conversations(tmp_path, chat_tokenizer):
    task = _task(tmp_path, [_conv(i) for i in range(30)])
    e = task.split("train")[0]
    enc = encode(chat_tokenizer, task, [e], 256)
    assert enc.template == "chat"
    text = chat_tokenizer.decode(enc.ids[0])
    assert "<|im_start|>user\nadd" in text.replace(" ", " ")
    trained = _trained_text(chat_tokenizer, enc, 0)
    assert trained.count("<|im_end|>") == 2 and "user" not in trained
    assert e.messages[3][1] in trained and e.messages[1][1] in trained
    prompt = chat_tokenizer.decode(enc.ids[0][: enc.n_prompt[0]])
    assert prompt.endswith("<|im_start|>assistant\n")
    # template = "plain" keeps the neutral template; "chat" without a template is an error
    plain = _task(tmp_path, [_conv(i) for i in range(30)], "p.jsonl", template="plain")
    assert encode(chat_tokenizer, plain, [e], 256).template == "plain"
    from ftscale.models import load_tokenizer

    forced = _task(tmp_path, [_conv(i) for i in range(30)], "c.jsonl", template="chat")
    with pytest.raises(UserError, match="has no chat template"):
        encode(load_tokenizer("ftlm-1"), forced, [e], 256)


def test_prompt_completion_and_text_keep_their_own_shape(tmp_path, chat_tokenizer):
    pc = _task(tmp_path, [{"prompt": f"{i}+1=", "completion": f"{i + 1}"} for i in range(30)])
    e = pc.split("train")[0]
    enc = encode(chat_tokenizer, pc, [e], 64)
    assert enc.template == "plain" and enc.masks is None
    assert "im_start" not in chat_tokenizer.decode(enc.ids[0])
    text = _task(tmp_path, [{"text": f"line {i} of text"} for i in range(30)], "t.jsonl")
    enc = encode(chat_tokenizer, text, text.split("train")[:1], 64)
    assert enc.template == "text" and enc.n_prompt == [1]  # bos, then every token trained


def test_over_long_examples_follow_the_rule(tmp_path, tokenizer):
    long_prompt = " ".join(["word"] * 200)
    rows = [{"prompt": long_prompt + f" {i}", "completion": f" answer {i}"} for i in range(30)]
    task = _task(tmp_path, rows)
    ex = task.split("train")[:2]
    enc = encode(tokenizer, task, ex, 32)
    assert enc.truncated == 2 and all(len(ids) <= 32 for ids in enc.ids)
    # the response survives whole, the context keeps its head and tail
    assert tokenizer.decode(enc.ids[0][enc.n_prompt[0] :]).strip().startswith("answer")
    rows = [{"prompt": "q", "completion": " ".join(["long"] * 100)} for _ in range(30)]
    task = _task(tmp_path, rows, "long.jsonl")
    e = task.split("train")[0]
    with pytest.raises(UserError, match=r"long\.jsonl:\d+: the response is \d+ tokens, longer "):
        encode(tokenizer, task, [e], 32)


def test_embedded_tasks_encode_as_before(tokenizer):
    from ftscale.data import get_task

    task = get_task("translate-en-de")
    ex = task.split("dev")[:8]
    enc = encode(tokenizer, task, ex, 64)
    assert enc.masks is None and enc.template == "task"
    for i, e in enumerate(ex):  # bos + prompt + target + eos, cut by the rule
        p = [tokenizer.bos_token_id] + tokenizer(task.prompt(e), add_special_tokens=False)[
            "input_ids"
        ]
        t = tokenizer(e.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(p) + len(t) <= 64:
            assert np.array_equal(enc.ids[i], np.array(p + t)) and enc.n_prompt[i] == len(p)
