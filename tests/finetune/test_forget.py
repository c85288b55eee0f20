"""Forgetting: the loss on a fixed sample of general text before and after finetuning."""

import math

import numpy as np
import pytest

from ftscale.errors import UserError
from ftscale.finetune.engine import run_finetune
from ftscale.finetune.forget import FORGET_STREAMS, forget_sample


def _hf_loss(model, windows):
    """Mean NLL over every token but each window's first, by Hugging Face's own shifted loss."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            ids = torch.from_numpy(w)[None]
            total += float(model(input_ids=ids, labels=ids).loss) * (len(w) - 1)
            count += len(w) - 1
    return total / count


def test_sample_is_fixed_windows_shared_among_the_streams(toy):
    _, tok, _ = toy
    a = forget_sample(tok, 7, 32)
    b = forget_sample(tok, 7, 32)
    assert len(a) == 7 and all(len(w) == 32 for w in a.ids) and a.n_prompt == [1] * 7
    assert all(np.array_equal(x, y) for x, y in zip(a.ids, b.ids, strict=True))
    # round-robin over the streams (sorted): 3 windows of the first, 2 of each other
    assert len(FORGET_STREAMS) == 3
    first = forget_sample(tok, 3, 32)
    assert np.array_equal(first.ids[0], a.ids[0]) and np.array_equal(first.ids[1], a.ids[3])


def test_record_has_before_after_and_their_difference(toy, quick):
    task, tok, model = toy
    rec = run_finetune(quick(forget_examples=4), model=model, tokenizer=tok, task=task)
    for k in ("forget_loss_before", "forget_loss", "forgetting"):
        assert isinstance(rec[k], float) and math.isfinite(rec[k]), k
    assert rec["forgetting"] == pytest.approx(rec["forget_loss"] - rec["forget_loss_before"])
    assert rec["seconds_by_phase"]["forget"] > 0
    # "before" is the base model's plain causal-LM loss on the sample
    sample = forget_sample(tok, 4, rec["config"]["max_length"])
    assert rec["forget_loss_before"] == pytest.approx(_hf_loss(model, sample.ids), rel=1e-5)


def test_an_untrained_adapter_forgets_nothing(toy, quick):
    task, tok, model = toy
    # LoRA's B starts at zero: at a negligible rate the kept model is the base model
    rec = run_finetune(
        quick(forget_examples=4, lr=1e-9, steps=2, eval_every=1, decode_examples=0),
        model=model, tokenizer=tok, task=task,
    )  # fmt: skip
    assert abs(rec["forgetting"]) < 1e-5


def test_full_tuning_forgets_more_than_lora(toy, quick):
    task, tok, model = toy
    kw = dict(forget_examples=4, steps=30, eval_every=10, decode_examples=0)
    fmt = run_finetune(quick(method="fmt", lr=3e-3, **kw), model=model, tokenizer=tok, task=task)
    lora = run_finetune(quick(method="lora", **kw), model=model, tokenizer=tok, task=task)
    assert fmt["forget_loss_before"] == lora["forget_loss_before"]
    assert fmt["forgetting"] > lora["forgetting"]


def test_prompt_tuning_is_scored_with_its_soft_prompt(toy, quick):
    task, tok, model = toy
    rec = run_finetune(
        quick(method="prompt", forget_examples=4, decode_examples=0),
        model=model, tokenizer=tok, task=task,
    )  # fmt: skip
    # the base weights are frozen: only the prepended soft prompt can change the loss
    assert rec["forgetting"] != 0.0 and math.isfinite(rec["forgetting"])


def test_off_and_a_user_text_file(toy, quick, tmp_path):
    task, tok, model = toy
    off = run_finetune(quick(forget_examples=0), model=model, tokenizer=tok, task=task)
    assert off["forget_loss_before"] is None and off["forgetting"] is None
    assert "forget" not in off["seconds_by_phase"]
    text = tmp_path / "general.txt"
    text.write_text(" ".join(task.prompt(ex) + " " + ex.target for ex in task.split("test")))
    own = run_finetune(
        quick(forget_examples=2, forget_text=str(text)), model=model, tokenizer=tok, task=task
    )
    sample = forget_sample(tok, 2, own["config"]["max_length"], str(text))
    assert own["forget_loss_before"] == pytest.approx(_hf_loss(model, sample.ids), rel=1e-5)


@pytest.mark.parametrize(
    "content,msg", [(None, "unreadable"), ("", "is empty"), ("  \n", "is empty")]
)
def test_a_bad_forget_text_is_a_user_error(toy, quick, tmp_path, content, msg):
    task, tok, model = toy
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=msg):
        run_finetune(quick(forget_text=str(path)), model=model, tokenizer=tok, task=task)
