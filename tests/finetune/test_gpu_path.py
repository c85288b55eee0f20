"""The GPU path's promises, checked on the CPU (this project's CI has no GPU).

On CUDA the engine runs forward passes under bf16 autocast, may ``torch.compile`` the decoder,
and must not make the host wait for the device inside the step loop. What can be checked without
a GPU is checked here on the same code: the bf16 autocast path (``precision="bf16"`` runs it on
the CPU), the compiled decoder (inductor's CPU backend), and which operators a training step
dispatches (an operator that reads device memory back to the host would be a sync on CUDA).
Not covered: CUDA kernels themselves, pinned-memory copies, fused AdamW's CUDA kernel, speed.
"""

from __future__ import annotations

import math

import pytest

import ftscale.finetune.engine as E
from ftscale.finetune.engine import run_finetune

#: Operators that read a tensor's value back to the host or have data-dependent output shapes:
#: each one is a host-device synchronisation on CUDA.
SYNC_OPS = {
    "_local_scalar_dense",  # .item(), float(t), bool(t), int(t)
    "is_nonzero",
    "item",
    "nonzero",
    "masked_select",
    "equal",
    "allclose",
    "unique",
    "_unique",
    "_unique2",
    "unique_consecutive",
    "unique_dim",
    "bincount",
    "repeat_interleave",
    "_assert_async",
}


def _recorder(log: list, tag):
    """A dispatch mode appending (tag(), op name) for every operator that would sync on CUDA,
    including indexing with a boolean mask (which calls nonzero)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._overloadpacket.__name__
            flagged = name in SYNC_OPS
            if name in ("index", "index_put", "index_put_", "_index_put_impl_"):
                idx = args[1] if len(args) > 1 else []
                flagged = any(
                    isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in idx or []
                )
            if flagged:
                log.append((tag(), name))
            return func(*args, **(kwargs or {}))

    return Record()


def _cuda():
    import torch

    return torch.device("cuda")


@pytest.mark.parametrize("method", ["fmt", "lora", "prompt"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_training_step_dispatches_no_operator_that_syncs(toy, method, precision, quick):
    import copy

    import torch

    from ftscale.finetune.config import FinetuneConfig
    from ftscale.finetune.methods import METHODS

    task, tok, model = toy
    cfg = FinetuneConfig(**quick(method=method))
    size = {"fmt": None, "lora": 4, "prompt": 8}[method]
    adapted = METHODS[method].apply(copy.deepcopy(model), tok, size, torch.Generator())
    device = torch.device("cpu")
    runner = E.Runner(adapted, device, precision=precision)
    if method == "prompt":
        assert runner.prefix_cache  # the prefix-once path is the one under test
    train = E.encode(tok, task, task.subset(64, 0), cfg.max_length)
    rng = E.np.random.default_rng(0)
    batches = E.train_batches(train, 16, runner.layout_prefix, tok.pad_token_id, rng)
    # the optimiser the engine makes for CUDA (fused AdamW: its step counters live on the
    # device; foreach AdamW, the CPU's choice, reads them with .item())
    opt = E.make_optimizer(adapted.trainable, cfg, 1e-3, _cuda())
    assert opt.defaults["fused"]
    losses = torch.zeros(4)
    E.train_step(runner, next(batches), opt, adapted.trainable, 1.0)  # lazy state: not counted
    log: list = []
    with _recorder(log, lambda: "step"):
        for i in range(4):
            losses[i] = E.train_step(runner, next(batches), opt, adapted.trainable, 1.0)
    assert log == []
    assert bool(torch.isfinite(losses).all())


def test_the_loop_reads_the_device_only_at_evaluation_points(toy, monkeypatch, quick):
    """With the CUDA policy (NaN checks at evaluation points), the only host reads between setup
    and the end of training are at steps 10 and 20 (``eval_every`` 10); a per-step ``.item()``
    for logging, say, would show up at the other steps."""
    task, tok, model = toy
    state = {"step": 0, "in_eval": False}
    real_step, real_eval = E.train_step, E.evaluate

    def counted_step(*a, **k):
        out = real_step(*a, **k)
        state["step"] += 1
        return out

    def flagged_eval(*a, **k):
        state["in_eval"] = True
        try:
            return real_eval(*a, **k)
        finally:
            state["in_eval"] = False

    monkeypatch.setattr(E, "train_step", counted_step)
    monkeypatch.setattr(E, "evaluate", flagged_eval)
    # the CUDA policies: NaN checks at evaluation points, fused AdamW
    monkeypatch.setattr(E, "nan_check_every", lambda device, every: every or 50)
    real_opt = E.make_optimizer
    monkeypatch.setattr(
        E, "make_optimizer", lambda params, cfg, lr, dev: real_opt(params, cfg, lr, _cuda())
    )
    log: list = []
    cfg = quick(method="lora", steps=20, eval_every=10, decode_examples=0, zero_shot=False)
    with _recorder(log, lambda: (state["step"], state["in_eval"])):
        rec = run_finetune(cfg, model=model, tokenizer=tok, task=task)
    assert rec["status"] == "done" and rec["steps"] == 20
    steps_with_reads = {step for (step, in_eval), _ in log if not in_eval}
    assert steps_with_reads <= {0, 10, 20}, sorted(steps_with_reads)
    assert 10 in steps_with_reads  # the NaN check at the first evaluation point is seen


def test_nan_checks_run_every_step_on_cpu_and_at_evaluation_points_on_cuda():
    import torch

    assert E.nan_check_every(torch.device("cpu"), 20) == 1
    assert E.nan_check_every(torch.device("cuda"), 20) == 20
    assert E.nan_check_every(torch.device("cuda"), 0) == 50


@pytest.mark.parametrize("method", ["fmt", "lora", "prompt"])
def test_bf16_autocast_path_trains_each_method(toy, method, quick):
    import torch

    from ftscale.finetune.methods import METHODS

    task, tok, model = toy
    lr = {"fmt": 3e-3, "lora": 1e-2, "prompt": 1e-1}[method]
    over = {"prompt_length": 8} if method == "prompt" else {}
    cfg = quick(method=method, lr=lr, **over)
    bf = run_finetune({**cfg, "precision": "bf16"}, model=model, tokenizer=tok, task=task)
    fp = run_finetune(cfg, model=model, tokenizer=tok, task=task)
    assert bf["status"] == "done"
    margin = {"fmt": 0.2, "lora": 0.05, "prompt": 0.01}[method]
    assert bf["loss"] < bf["zero_shot_loss"] - margin
    # bf16 rounds every matmul input to 8 bits of mantissa: close to fp32, not equal
    assert bf["loss"] != fp["loss"]
    assert abs(bf["loss"] - fp["loss"]) < 0.05 * fp["loss"]
    assert math.isfinite(bf["bleu"]) and bf["run_key"] != fp["run_key"]
    # the autocast is really on: the head's logits come out in bf16
    import copy

    size = {"fmt": None, "lora": 4, "prompt": 8}[method]
    gen = torch.Generator().manual_seed(0)
    adapted = METHODS[method].apply(copy.deepcopy(model), tok, size, gen)
    runner = E.Runner(adapted, torch.device("cpu"), precision="bf16")
    enc = E.encode(tok, task, task.subset(8, 0), 64)
    b = E.eval_batches(enc, 8, runner.layout_prefix, tok.pad_token_id)[0]
    assert runner.target_logits(b).dtype == torch.bfloat16
    fp32 = E.Runner(adapted, torch.device("cpu"), precision="auto")
    assert fp32.target_logits(b).dtype == torch.float32


def test_precision_is_validated(toy, quick):
    from ftscale.errors import UserError

    task, tok, model = toy
    with pytest.raises(UserError, match="unknown precision"):
        run_finetune(quick(precision="fp8"), model=model, tokenizer=tok, task=task)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fmt", "prompt"])
def test_compiled_decoder_matches_eager(toy, method, quick):
    """``compile=True`` (inductor, here its CPU backend) gives the eager run's losses up to
    float reordering; prompt tuning then concatenates the prefix (no prefix cache)."""
    task, tok, model = toy
    over = {"prompt_length": 8, "lr": 1e-1} if method == "prompt" else {"lr": 3e-3}
    cfg = quick(method=method, steps=8, eval_every=4, decode_examples=2, **over)
    eager = run_finetune(cfg, model=model, tokenizer=tok, task=task)
    compiled = run_finetune({**cfg, "compile": True}, model=model, tokenizer=tok, task=task)
    assert compiled["status"] == "done"
    assert compiled["run_key"] == eager["run_key"]  # compile is an execution detail
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=2e-3)
    assert compiled["dev_loss"] == pytest.approx(eager["dev_loss"], rel=2e-3)


def test_the_empty_cache_forward_changes_no_number(toy, monkeypatch, quick):
    """The sync-free forward (an empty KV cache, so transformers' mask code reads nothing back)
    gives bit-identical runs to the plain forward on the CPU."""
    task, tok, model = toy
    cfg = quick(method="fmt", steps=6, eval_every=3, decode_examples=0)
    fast = run_finetune(cfg, model=model, tokenizer=tok, task=task)
    monkeypatch.setattr(E.Runner, "_empty_cache_works", lambda self: False)
    plain = run_finetune(cfg, model=model, tokenizer=tok, task=task)
    assert (fast["loss"], fast["dev_loss"], fast["zero_shot_loss"]) == (
        plain["loss"],
        plain["dev_loss"],
        plain["zero_shot_loss"],
    )
