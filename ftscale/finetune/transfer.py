"""Transfer evaluation: how finetuning changes a model's zero- and few-shot ability on related
tasks (the paper's Section 5: models finetuned on En->De evaluated on X->De).

For each related task (same target language, other source languages) and each number of
in-context examples k, the model is scored on a fixed sample of that task's test split: the
target-only loss (nats/token) and, on a smaller sample, greedy-decoding BLEU and chrF. The k
demonstrations of item i are the k items after it in the test split (cyclically), never the item
itself, so every item has the same number of demonstrations and nothing outside the task is used.
The base model is scored the same way before finetuning, so the change is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ftscale.finetune.batching import encode, eval_batches
from ftscale.finetune.evaluate import decode_hypotheses, evaluate

#: Tokens per evaluated sequence with demonstrations (the family's models take 512 positions).
TRANSFER_MAX_LENGTH = 512


@dataclass(frozen=True)
class _Shot:
    """An example whose prompt (with its demonstrations) is precomputed."""

    source: str
    target: str
    lang: str
    text: str


class _ShotTask:
    """Task shim for :func:`ftscale.finetune.batching.encode`: the prompt is the precomputed one."""

    def __init__(self, task: Any):
        self.name = task.name
        self.metric = task.metric

    @staticmethod
    def prompt(example: _Shot) -> str:
        return example.text


def shot_examples(task: Any, k: int, n: int) -> list[_Shot]:
    """The first ``n`` test items of ``task`` with ``k`` demonstrations each."""
    pool = task.split("test")
    if k >= len(pool):
        from ftscale.errors import UserError

        raise UserError(f"{task.name}: {k} demonstrations need more than {len(pool)} test items")
    out = []
    for i, ex in enumerate(pool[:n]):
        demos = [pool[(i + j + 1) % len(pool)] for j in range(k)]
        text = "".join(task.prompt(d) + d.target + "\n\n" for d in demos) + task.prompt(ex)
        out.append(_Shot(ex.source, ex.target, ex.lang, text))
    return out


def evaluate_transfer(
    runner: Any,
    tokenizer: Any,
    task_names: list[str],
    shots: tuple[int, ...],
    n_loss: int,
    n_decode: int,
    pad_id: int,
    batch_size: int,
    max_new_tokens: int,
    max_length: int = TRANSFER_MAX_LENGTH,
) -> list[dict[str, Any]]:
    """Score ``runner``'s model on each related task and shot count.

    Returns ``[{"task", "shots", "loss", "bleu", "chrf", "n"}]`` (loss in nats/token of the
    target on ``n_loss`` items; BLEU and chrF on the first ``n_decode`` of them).
    """
    from ftscale.data.user import resolve_task
    from ftscale.finetune.metrics import quality

    out = []
    for name in task_names:
        task = resolve_task(name)
        shim = _ShotTask(task)
        for k in shots:
            sample = shot_examples(task, k, n_loss)
            enc = encode(tokenizer, shim, sample, max_length)
            loss = evaluate(runner, eval_batches(enc, batch_size, runner.layout_prefix, pad_id))
            row: dict[str, Any] = {"task": name, "shots": k, "loss": loss, "n": len(sample)}
            if n_decode:
                dec = sample[:n_decode]
                hyps = decode_hypotheses(
                    runner,
                    tokenizer,
                    shim,
                    dec,
                    max_length=max_length,
                    max_new_tokens=max_new_tokens,
                    batch_size=batch_size,
                    pad_id=pad_id,
                    first_line=True,  # a demonstration-following model stops at a blank line
                )
                q = quality(task.metric, hyps, [ex.target for ex in dec], [ex.lang for ex in dec])
                row.update(bleu=q.get("bleu"), chrf=q.get("chrf"))
            out.append(row)
    return out


def merge_transfer(
    base: list[dict[str, Any]] | None, tuned: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Pair base-model and finetuned rows: ``[{"task", "shots", "base": {...}, "finetuned": {...}}]``."""
    base_by = {(r["task"], r["shots"]): r for r in base or []}
    keep = ("loss", "bleu", "chrf", "n")
    return [
        {
            "task": r["task"],
            "shots": r["shots"],
            "base": {k: base_by[(r["task"], r["shots"])].get(k) for k in keep}
            if (r["task"], r["shots"]) in base_by
            else None,
            "finetuned": {k: r.get(k) for k in keep},
        }
        for r in tuned
    ]
