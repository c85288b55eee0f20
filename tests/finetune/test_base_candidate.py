"""A run never reports a finetuned model worse than its base (issue 21): step 0 is a checkpoint
candidate, and a model ftscale did not pretrain gets its rates searched on dev, never the
family's defaults silently."""

from __future__ import annotations

import pytest

from ftscale.finetune import FinetuneConfig, run_finetune
from ftscale.finetune.methods import METHODS
from ftscale.finetune.rates import PRETRAINED_LR_FACTORS, lr_candidates, lr_policy
from ftscale.finetune.runkey import run_key


@pytest.mark.parametrize("method", ["lora", "fmt"])
def test_a_run_whose_training_only_hurt_keeps_step_0_the_base_model(toy, quick, method):
    task, tok, model = toy
    # a destructive rate: every step raises the dev loss
    rec = run_finetune(
        quick(method=method, lr=1.0, grad_clip=0.0, steps=10, eval_every=5, decode_examples=0),
        model=model,
        tokenizer=tok,
        task=task,
    )
    assert rec["status"] == "done" and rec["best_step"] == 0
    # FMT and LoRA (and IA3) start as the base model: the test loss is the zero-shot loss
    assert rec["loss"] == pytest.approx(rec["zero_shot_loss"], rel=1e-5)


def test_step_0_is_off_on_request_and_a_useful_run_moves_past_it(toy, quick):
    task, tok, model = toy
    off = run_finetune(
        quick(
            lr=1.0, grad_clip=0.0, steps=10, eval_every=5, decode_examples=0, base_candidate=False
        ),
        model=model,
        tokenizer=tok,
        task=task,
    )
    assert off["best_step"] > 0 and off["loss"] > off["zero_shot_loss"]
    good = run_finetune(quick(decode_examples=0), model=model, tokenizer=tok, task=task)
    assert good["best_step"] > 0 and good["loss"] < good["zero_shot_loss"]


def test_a_search_keeps_step_0_when_no_rate_helps(toy, quick):
    task, tok, model = toy
    rec = run_finetune(
        quick(lr=[0.5, 1.0], grad_clip=0.0, steps=10, eval_every=5, decode_examples=0),
        model=model,
        tokenizer=tok,
        task=task,
    )
    assert rec["best_step"] == 0 and rec["lr_policy"] == "pinned"
    assert all(t["best_step"] == 0 for t in rec["lr_trials"])


def test_run_search_scripted_dev_losses_step_0_wins_ties_and_loses_to_a_better_step():
    """run_search on a scripted dev curve: step 0 (dev 1.0) is kept when no step beats it, and a
    later step below it is kept otherwise; dev is evaluated once at step 0 for all trials."""
    import torch

    from ftscale.finetune.optim import Schedule
    from ftscale.finetune.search import Loop, Trial, run_search

    def run(curve: list[float], n_trials: int) -> tuple:
        p = torch.nn.Parameter(torch.zeros(1))
        evals = iter(curve)

        def step(batch, opt):
            with torch.no_grad():
                p.add_(1.0)
            return torch.tensor(0.0)

        class B:
            n_tokens = 1

        loop = Loop(
            params=[p], dev_batches=[], train_step=step, evaluate=lambda bs: next(evals),
            sync=lambda: None, patience=0, eval_every=2, check_every=1,
            phases={"train": 0.0, "dev_eval": 0.0}, step0=True,
        )  # fmt: skip
        trials = [
            Trial(lr=1.0, schedule=Schedule("cosine", 4, 1.0, 0.0, 0.1), opt=torch.optim.SGD([p]),
                  batches=iter([B()] * 4), losses=torch.zeros(4))
            for _ in range(n_trials)
        ]  # fmt: skip
        chosen = run_search(loop, trials, "grid", 4)
        return chosen.best_step, float(p.detach()), [t.best_step for t in trials]

    assert run([1.0, 2.0, 3.0], 1) == (0, 0.0, [0])  # worse at steps 2 and 4: step 0, p reset
    assert run([1.0, 0.5, 3.0], 1) == (2, 2.0, [2])  # better at step 2: kept
    assert run([1.0, 1.0, 1.0], 1)[0] == 0  # a tie is no improvement
    # two trials, one evaluation at step 0 (1.0) shared, then two per trial
    best, _, steps = run([1.0, 2.0, 2.0, 0.9, 2.0], 2)
    assert (best, steps) == (2, [0, 2])


def _cfg(model: str, method: str = "lora", lr=None) -> FinetuneConfig:
    return FinetuneConfig(model=model, task="translate-en-de", method=method, lr=lr)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_real_model_gets_a_dev_search_around_its_own_centre(method, tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    centre = METHODS[method].pretrained_lr
    want = sorted({float(f"{centre * f:.3g}") for f in PRETRAINED_LR_FACTORS})
    for name in ("smollm2-135m", "gemma3-270m", str(gguf), str(hf), "org/some-model"):
        for lr in (None, "auto"):
            cfg = _cfg(name, method, lr)
            assert lr_policy(cfg) == "auto-pretrained"
            assert lr_candidates(cfg) == want
            assert METHODS[method].default_lr not in want  # never the family's rate
    assert lr_policy(_cfg("smollm2-135m", method, 1e-4)) == "pinned"
    assert lr_candidates(_cfg("smollm2-135m", method, 1e-4)) == [1e-4]


def test_the_family_and_models_handed_in_keep_the_measured_defaults():
    assert lr_policy(_cfg("ftlm-1")) == "family-default"
    assert lr_candidates(_cfg("ftlm-1")) == [METHODS["lora"].default_lr]
    assert lr_policy(_cfg("ftlm-1", lr="auto")) == "auto"
    assert lr_policy(_cfg("toy")) == "family-default"  # a label for a model handed in


def test_the_rate_policy_is_part_of_the_run_key():
    a = run_key(_cfg("smollm2-135m"), data_hash="d", model_id="m")
    b = run_key(_cfg("smollm2-135m", lr=1e-2), data_hash="d", model_id="m")
    assert a != b
