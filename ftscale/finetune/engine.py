"""One finetuning run, in plain sight: load, encode, loop, evaluate, decode, record.

The loop is deliberately explicit (nanoGPT-style): a batch is a padded id tensor plus the flat
positions of the target tokens (``batching``), a step is forward / backward / clip / optimiser
(``train_step``). The rooms around it: ``batching`` (encoding, padded batches), ``runner`` (the
adapted model's forward passes), ``evaluate`` (target loss, greedy decoding, metrics),
``resources`` (device, memory guard, parameter counts), ``methods/`` (what each method trains).
Choices that make it fast, each measured in docs/performance.md:

- Fixed, small dev/test samples, batched evaluation, early stopping with a patience, and a
  KV-cached batched greedy decoder on a small fixed sample for BLEU/chrF/ROUGE-L.
- On CUDA: bf16 autocast, fused AdamW, losses kept on the device (checked for NaN/inf only at
  evaluation points), pinned host batches copied without blocking, optional torch.compile, and
  no operator in a step that reads device memory back (tests/finetune/test_gpu_path.py).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import numpy as np

from ftscale import __version__
from ftscale.errors import UserError
from ftscale.finetune import basecache
from ftscale.finetune.batching import Batch, encode, eval_batches, make_batch, train_batches
from ftscale.finetune.config import FinetuneConfig, budget_steps, validate
from ftscale.finetune.evaluate import decode_quality, evaluate, greedy_decode
from ftscale.finetune.forget import forget_sample
from ftscale.finetune.methods import METHODS, Adapted
from ftscale.finetune.optim import make_optimizer, make_schedule
from ftscale.finetune.rates import lr_candidates, lr_policy
from ftscale.finetune.resources import (
    check_memory,
    count_parameters,
    estimate_train_bytes,
    peak_memory,
    resolve_device,
    sync,
)
from ftscale.finetune.runkey import data_fingerprint, run_key
from ftscale.finetune.runner import Runner, autocast_bf16
from ftscale.finetune.search import Loop, Trial, run_search
from ftscale.finetune.trackers import open_trackers
from ftscale.finetune.transfer import TRANSFER_MAX_LENGTH, evaluate_transfer, merge_transfer
from ftscale.schema import ALL_COLUMNS

# Re-exported: the loop's pieces, reachable from the engine as before.
__all__ = [
    "Batch",
    "Runner",
    "autocast_bf16",
    "encode",
    "eval_batches",
    "evaluate",
    "greedy_decode",
    "make_batch",
    "nan_check_every",
    "run_finetune",
    "train_batches",
    "train_step",
]


def train_step(runner: Runner, batch: Batch, opt: Any, params: list, grad_clip: float) -> Any:
    """One optimiser step on ``batch``: forward, backward, clip, update, zero the gradients.

    Returns the batch's mean target loss as a detached device tensor, never a Python number:
    nothing here reads a value back to the host (no ``.item()``, no data-dependent shapes), so
    on CUDA the host queues step after step without waiting for the device. Tested on the CPU
    by recording every operator a step dispatches (tests/finetune/test_gpu_path.py).
    """
    import torch

    loss = runner.loss(batch.to(runner.device), train=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def rng_for(seed: int) -> np.random.Generator:
    """The batch-order generator of a run (one per candidate rate, all alike)."""
    return np.random.default_rng(seed)


def nan_check_every(device: Any, eval_every: int) -> int:
    """Steps between NaN/inf checks of the training losses: every step on the CPU (a check costs
    nothing there and a diverged run stops at once), only at evaluation points (every
    ``eval_every`` steps, 50 if 0) on CUDA, where reading a flag back is a host-device sync."""
    return 1 if device.type == "cpu" else (eval_every or 50)


# ----------------------------------------------------------------------------------------------
# loading (module-level functions, so tests can hand in a toy task or model)


def _load_task(ref: Any) -> Any:
    """An embedded task by name, or a user task from a data path or a task-source mapping."""
    from ftscale.data.user import resolve_task

    return resolve_task(ref)


def _load_model(name: str) -> tuple[Any, Any, Any]:
    """(model, tokenizer, ModelInfo) on the CPU: a family member, a local Hugging Face causal-LM
    folder or a GGUF file, through ``ftscale.models.load_model`` (unknown name: UserError)."""
    from ftscale.models import load_model

    return load_model(name)


def _model_info(name: str) -> Any:
    from ftscale.models import model_info

    return model_info(name)


def _model_fingerprint(name: str) -> str:
    from ftscale.models.registry import model_fingerprint

    return model_fingerprint(name)


def as_config(config: FinetuneConfig | dict) -> FinetuneConfig:
    """``config`` as a validated :class:`FinetuneConfig` (a dict's unknown keys: UserError)."""
    if isinstance(config, dict):
        known = set(FinetuneConfig.__dataclass_fields__)
        unknown = sorted(set(config) - known)
        if unknown:
            raise UserError(f"unknown finetuning option(s): {', '.join(unknown)}")
        config = FinetuneConfig(**config)
    validate(config)
    return config


def _examples(config: FinetuneConfig, task: Any) -> tuple[list, list, list]:
    """(train subset, dev sample, test sample) of ``task``; sizes checked before any model."""
    n_train = len(task.split("train"))
    if config.data_size > n_train:
        raise UserError(
            f"data size {config.data_size} exceeds the {n_train} training examples of "
            f"task {getattr(task, 'name', config.task)!r}",
            path=getattr(task, "where", None),
        )
    train_ex = task.subset(config.data_size, config.seed)
    dev_ex = task.split("dev")[: config.dev_examples]
    test_ex = task.split("test")[: config.test_examples]
    if not dev_ex or not test_ex:
        raise UserError(f"task {config.task!r} has an empty dev or test split")
    return train_ex, dev_ex, test_ex


# ----------------------------------------------------------------------------------------------
# the run


def run_finetune(
    config: FinetuneConfig | dict,
    *,
    model: Any = None,
    tokenizer: Any = None,
    task: Any = None,
    info: Any = None,
) -> dict[str, Any]:
    """Run one finetuning run and return its record (one row of the results table).

    ``config``: a :class:`FinetuneConfig` or a dict of its fields. ``model``/``tokenizer``/
    ``task``/``info`` may be given directly (a deep copy of ``model`` is trained, the caller's
    stays untouched); otherwise they are loaded by name through ``ftscale.models`` and
    ``ftscale.data``. Bad input raises :class:`UserError` before any training.

    Record: the schema's columns (losses in nats/token of the target, sizes in parameters /
    examples / tokens, ``train_seconds`` in seconds, ``peak_mem_bytes`` in bytes, ``flops``
    estimated per training token by the method (6 N for full tuning, 4 N + 6 trainable for PET;
    N the base model's parameters)), plus ``status`` ("done" or "diverged"), quality metrics with their
    signatures, and the run's configuration. A diverged run has null losses and metrics.
    """
    t_start = time.perf_counter()
    config = as_config(config)
    import torch

    device = resolve_device(config.device)
    if device.type == "cpu" and config.threads:
        torch.set_num_threads(config.threads)
    method = METHODS[config.method]
    pet_size = method.pet_size(getattr(config, method.pet_size_field or "", None))
    rates = lr_candidates(config)

    # --- data: check sizes before loading any model
    task = task if task is not None else _load_task(config.task_source or config.task)
    train_ex, dev_ex, test_ex = _examples(config, task)

    phases = {"setup": 0.0, "zero_shot": 0.0, "train": 0.0, "dev_eval": 0.0}
    # --- model
    if model is None:
        # refuse a model too large for the device before reading gigabytes of weights
        size = _model_info(config.model).model_size
        check_memory(size * 4 * method.weight_copies, device, config)
        model, tokenizer, info = _load_model(config.model)
        model_id = _model_fingerprint(config.model)
    else:
        if tokenizer is None:
            raise UserError("a model given directly needs its tokenizer")
        model = copy.deepcopy(model)
        model_id = None
    method.check_pet_size(getattr(model, "config", None), pet_size, config.max_length)
    model.to(torch.float32)
    model_size, nonembed = count_parameters(model)
    if info is not None:
        model_size = int(getattr(info, "model_size", None) or model_size)
        nonembed = int(getattr(info, "model_size_nonembed", None) or nonembed)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0

    train = encode(tokenizer, task, train_ex, config.max_length)
    dev = encode(tokenizer, task, dev_ex, config.max_length)
    test = encode(tokenizer, task, test_ex, config.max_length)

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)

    # --- zero-shot loss of the base model (before any adapter is added)
    eval_bs = 2 * config.batch_size
    base = Runner(Adapted(model, None, [], 0), device, precision=config.precision)
    cached: list[str] = []

    def base_loss(what: str, enc: Any) -> float:
        """The base model's loss on ``enc``, from the cache when this model was measured on
        these exact inputs before (basecache)."""
        model.to(device)
        loss, hit = basecache.base_loss(
            model_id,
            enc,
            config.precision,
            device.type,
            lambda: evaluate(base, eval_batches(enc, eval_bs, 0, pad_id)),
            what,
        )
        if hit:
            cached.append(what)
        return loss

    zero_shot = None
    if config.zero_shot:
        check_memory(estimate_train_bytes(model, 0, config, 0), device, config)
        t = time.perf_counter()
        zero_shot = base_loss("zero_shot", test)
        phases["zero_shot"] = time.perf_counter() - t

    # --- forgetting, before: the base model's loss on a fixed sample of general text
    forget = None
    forget_before = None
    if config.forget_examples:
        t = time.perf_counter()
        forget = forget_sample(
            tokenizer, config.forget_examples, config.max_length, config.forget_text
        )
        forget_before = base_loss("forget", forget)
        phases["forget"] = time.perf_counter() - t

    # --- step 0's dev loss, where the method starts as the base model (the first checkpoint)
    step0_dev = None
    if config.base_candidate and method.starts_as_base:
        t = time.perf_counter()
        step0_dev = base_loss("dev", dev)
        phases["dev_eval"] += time.perf_counter() - t

    transfer_tasks: list[str] = []
    base_transfer = None
    if config.transfer:
        transfer_tasks = config.transfer_tasks or _related_tasks(task, config.task)
        model.to(device)
        t = time.perf_counter()
        base_transfer = _transfer(
            Runner(Adapted(model, None, [], 0), device, precision=config.precision),
            tokenizer,
            transfer_tasks,
            config,
            pad_id,
        )
        phases["transfer"] = time.perf_counter() - t

    # --- the method: adapters or a soft prompt on the base model
    adapted = method.apply(model, tokenizer, pet_size, gen)
    model = adapted.model
    prefix_len = 0 if adapted.prefix is None else int(adapted.prefix.shape[0])
    trainable = int(sum(p.numel() for p in adapted.trainable))
    check_memory(
        estimate_train_bytes(model, trainable, config, prefix_len, candidates=len(rates)),
        device,
        config,
    )
    model.to(device)
    if adapted.prefix is not None:
        adapted.prefix.data = adapted.prefix.data.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runner = Runner(adapted, device, compile=config.compile, precision=config.precision)
    layout = runner.layout_prefix
    dev_b = eval_batches(dev, eval_bs, layout, pad_id)
    test_b = eval_batches(test, eval_bs, layout, pad_id)

    total = budget_steps(config)
    phases["setup"] = (
        time.perf_counter()
        - t_start
        - phases["zero_shot"]
        - phases["dev_eval"]
        - phases.get("transfer", 0.0)
        - phases.get("forget", 0.0)
    )
    params = adapted.trainable

    def step_fn(batch: Batch, opt: Any) -> Any:
        return train_step(runner, batch, opt, params, config.grad_clip)

    tracked = open_trackers(config)
    loop = Loop(
        params=params,
        dev_batches=dev_b,
        train_step=step_fn,
        evaluate=lambda bs: evaluate(runner, bs),
        sync=lambda: sync(device),
        patience=config.patience,
        eval_every=config.eval_every or total,
        check_every=nan_check_every(device, config.eval_every),
        phases=phases,
        on_dev=None if tracked is None else tracked.dev,
        step0=config.base_candidate,
        step0_dev=step0_dev,
    )
    trials = [
        Trial(
            lr=rate,
            schedule=make_schedule(config, total, rate),
            opt=make_optimizer(params, config, rate, device),
            # every candidate sees the same batches: the same seed, its own stream
            batches=train_batches(train, config.batch_size, layout, pad_id, rng_for(config.seed)),
            losses=torch.full((total,), float("nan"), device=device),
        )
        for rate in rates
    ]

    # --- the loop (search.py): each candidate rate, dev evaluation and early stopping
    model.train()
    chosen = run_search(loop, trials, config.lr_search, total)
    train_time = phases["train"]
    train_tokens = sum(t.train_tokens for t in trials)
    shown = chosen or trials[0]  # every candidate diverged: report the lowest rate's
    diverged_step = None if chosen is not None else shown.diverged_step
    step, lr = shown.step, shown.lr

    # --- the record
    record: dict[str, Any] = {c: None for c in ALL_COLUMNS}
    record.update(
        task=getattr(task, "name", config.task),
        method=config.method,
        model=getattr(info, "name", None) or config.model,
        model_size=model_size,
        model_size_nonembed=nonembed,
        pretrain_tokens=getattr(info, "pretrain_tokens", None),
        pet_size=pet_size,
        pet_params=adapted.pet_params,
        data_size=config.data_size,
        seed=config.seed,
        trainable_params=trainable,
        zero_shot_loss=zero_shot,
        forget_loss_before=forget_before,
        steps=diverged_step or step,
        diverged_step=diverged_step,
        tokens_per_second=train_tokens / train_time if train_time > 0 else None,
        flops=float(method.flops_per_token(model_size, trainable) * train_tokens),
    )
    if chosen is None:
        record.update(status="diverged", loss=None, dev_loss=None, best_step=None)
    else:  # the parameters are at the chosen rate's best-dev checkpoint (run_search)
        record.update(status="done", dev_loss=chosen.best_dev, best_step=chosen.best_step)
        t = time.perf_counter()
        record["loss"] = evaluate(runner, test_b)
        phases["test_eval"] = time.perf_counter() - t
        if not math.isfinite(record["loss"]):  # finite dev, overflowing test: still no result
            record.update(
                status="diverged", loss=None, dev_loss=None, diverged_step=chosen.best_step
            )
        else:
            if config.decode_examples and getattr(task, "metric", True):
                t = time.perf_counter()
                record.update(
                    decode_quality(
                        runner,
                        tokenizer,
                        task,
                        test_ex[: config.decode_examples],
                        max_length=config.max_length,
                        max_new_tokens=config.max_new_tokens,
                        batch_size=2 * config.batch_size,
                        pad_id=pad_id,
                    )
                )
                phases["decode"] = time.perf_counter() - t
            if forget is not None:
                # after: at the kept checkpoint, as the finetuned model runs (a soft prompt
                # prepended, an adapter applied)
                t = time.perf_counter()
                after = evaluate(runner, eval_batches(forget, eval_bs, layout, pad_id))
                record["forget_loss"] = after
                record["forgetting"] = after - forget_before
                phases["forget"] += time.perf_counter() - t
            if config.transfer:
                t = time.perf_counter()
                tuned = _transfer(runner, tokenizer, transfer_tasks, config, pad_id)
                record["transfer"] = merge_transfer(base_transfer, tuned)
                phases["transfer"] += time.perf_counter() - t
    record["train_seconds"] = time.perf_counter() - t_start
    record["seconds_by_phase"] = {k: round(v, 4) for k, v in phases.items()}
    record["base_losses_cached"] = cached  # base-model losses read from the cache (basecache)
    record["peak_mem_bytes"] = peak_memory(device)
    data_hash = task.data_hash("train") if hasattr(task, "data_hash") else None
    record.update(
        lr=lr,
        lr_candidates=rates,
        lr_policy=lr_policy(config),
        lr_trials=[t.summary() for t in trials] if len(trials) > 1 else None,
        search_steps=sum(t.step for t in trials),
        decay_step=shown.schedule.plateau_step,
        device=str(device),
        code_version=__version__,
        data_hash=data_hash,
        data_format=getattr(task, "format", None),
        template=train.template,
        truncated=train.truncated + dev.truncated + test.truncated,
        # the planner's key of the same run (a model handed in directly has no fingerprint)
        run_key=run_key(
            config,
            data_hash=data_fingerprint(task) if hasattr(task, "data_hash") else None,
            model_id=model_id,
        ),
        config=config.to_dict(),
    )
    if tracked is not None:
        tracked.finish(record, trials)
    return record


def _related_tasks(task: Any, name: str) -> list[str]:
    from ftscale.data import related_tasks

    return related_tasks(getattr(task, "name", name))


def _transfer(
    runner: Runner, tokenizer: Any, tasks: list[str], config: FinetuneConfig, pad_id: int
) -> list[dict[str, Any]]:
    return evaluate_transfer(
        runner,
        tokenizer,
        tasks,
        tuple(config.transfer_shots),
        config.transfer_examples,
        config.transfer_decode,
        pad_id,
        config.batch_size,
        config.max_new_tokens,
        # demonstrations need room, within the positions the model has
        min(TRANSFER_MAX_LENGTH, getattr(runner.model.config, "max_position_embeddings", 512)),
    )
