"""The pretraining loop of one model, in plain sight (nanoGPT's ``train.py``): one batch, one
step; held-out evaluation, resume state and checkpoints at fixed steps.

The batch at step ``s`` depends only on ``(seed, s)`` and the model has no dropout, so a run is
deterministic for a seed, and a run resumed from its saved state reproduces the uninterrupted
one bit for bit. What to train comes from :mod:`ftscale.models.recipe`, the windows from
:mod:`ftscale.models.tokens`, the files it writes follow :mod:`ftscale.models.checkpoint`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.models.checkpoint import (
    META_FILE,
    format_tokens,
    load_state,
    save_state,
    write_checkpoint,
)
from ftscale.models.family import Shape, shape_to_dict
from ftscale.models.recipe import checkpoint_steps, member_hash, peak_lr
from ftscale.models.tokens import Batches, heldout_windows, tokenizer_hash
from ftscale.models.training import mean_token_nll, warmup_cosine


def evaluate(model: Any, windows: dict[str, Any], batch_size: int = 16) -> dict[str, float]:
    """Mean next-token NLL per held-out stream, nats/token (windows: ``(x, y)`` per stream)."""
    import torch.nn.functional as F

    def loss_sum(i: int, x: Any, y: Any) -> tuple[Any, int]:
        logits = model(input_ids=x[i : i + batch_size]).logits
        yy = y[i : i + batch_size]
        return F.cross_entropy(
            logits.flatten(0, 1).float(), yy.flatten(), reduction="sum"
        ), yy.numel()

    device = next(model.parameters()).device
    return {
        stream: mean_token_nll(
            model, range(0, x.shape[0], batch_size), lambda i, x=x, y=y: loss_sum(i, x, y), device
        )
        for stream, (x, y) in windows.items()
    }


# ----------------------------------------------------------------------------------------------
# one model


@dataclass
class RunResult:
    name: str
    checkpoints: list[Path]
    steps: int
    tokens_per_second: float
    wall_seconds: float


def pretrain_lr(step: int, total_steps: int, recipe: dict[str, Any]) -> float:
    """The rate at 0-based ``step``: :func:`~ftscale.models.training.warmup_cosine` in its
    pretraining convention, warming up over ``max(1, int(warmup_frac * total))`` steps."""
    warmup = max(1, int(recipe["warmup_frac"] * total_steps))
    return warmup_cosine(
        step + 1, total_steps, recipe["lr"], warmup, recipe["min_lr_ratio"], convention="pretrain"
    )


def _log(msg: str, logfile: Path | None) -> None:
    print(msg, file=sys.stderr, flush=True)
    if logfile is not None:
        with open(logfile, "a") as fh:
            fh.write(msg + "\n")


def loss_read_every(device: Any, log_every: int) -> int:
    """Steps between reads of the training losses from the device: 1 on the CPU, ``log_every``
    on CUDA (each read is a host-device sync; the values and the EMA are the same)."""
    return 1 if device.type == "cpu" else max(1, log_every)


def read_losses(losses: list[Any]) -> list[float]:
    """Scalar loss tensors as Python floats, in one read from the device."""
    import torch

    return torch.stack(losses).tolist()


def _to_device(t: Any, device: str) -> Any:
    """A host batch on ``device``: on CUDA through pinned memory, so the copy does not wait."""
    if str(device).startswith("cuda"):
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


def train_model(
    out: Path,
    name: str,
    shape: Shape,
    recipe: dict[str, Any],
    tokenizer: Any,
    train_packed: dict[str, Any],
    heldout_packed: dict[str, Any],
    stop_after: int | None = None,
    device: str = "cpu",
) -> RunResult:
    """Pretrain one model and publish its checkpoints under ``out``.

    ``stop_after`` stops (as an interruption would) after that many steps of this call; the next
    call resumes from the saved state. Returns the published checkpoint folders and throughput
    (training tokens per second, evaluation excluded).
    """
    import torch
    import torch.nn.functional as F
    from transformers import LlamaForCausalLM

    from ftscale.models.family import llama_config

    torch.set_num_threads(1)  # measured: 1 intra-op thread is ~6x faster than 2 here
    state_dir = out / ".state" / name
    state_dir.mkdir(parents=True, exist_ok=True)
    logfile = state_dir / "log.txt"
    rhash = member_hash(recipe, name, shape)
    sched = {**recipe, "lr": peak_lr(recipe, shape, name)}
    tokens_per_step = recipe["batch_size"] * recipe["seq_len"]
    total_steps = recipe["tokens"] // tokens_per_step
    ckpt_steps = checkpoint_steps(name, total_steps, recipe)
    resume_every = (
        max(1, int(recipe["resume_every_frac"] * total_steps))
        if recipe["resume_every_frac"]
        else total_steps
    )
    if len(tokenizer) > shape.vocab_size:
        raise UserError(
            f"tokenizer has {len(tokenizer)} tokens but model {name} has vocab_size {shape.vocab_size}"
        )

    state_file = state_dir / "state.pt"
    tok_dir = out / "tokenizer"
    tok_hash = tokenizer_hash(tok_dir)
    done = out / name / META_FILE
    if done.exists() and not state_file.exists():
        # Finished earlier (its resume state is gone): reuse it if the same recipe made it.
        meta = json.loads(done.read_text())
        if meta.get("recipe_hash") != rhash or meta.get("tokenizer_sha256") != tok_hash:
            raise UserError(
                f"{out / name}: a checkpoint made by a different recipe or tokenizer; "
                "use a fresh output folder"
            )
        _log(f"{name}: finished earlier, kept", logfile)
        return RunResult(name, [], meta["steps"], meta["tokens_per_second"], meta["train_seconds"])

    torch.manual_seed(recipe["seed"])
    config = llama_config(shape, tokenizer)
    model = LlamaForCausalLM(config)  # initialised on the CPU so the init is device-independent
    model.to(device).train()
    # nanoGPT's split: decay matrices, not norms.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": recipe["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=recipe["lr"],
        betas=(recipe["beta1"], recipe["beta2"]),
        eps=1e-8,
    )
    # Held-out loss every 1/8 of the run (at each resume point): the loss-vs-tokens curve.
    step, train_time, published, curve = 0, 0.0, [], []
    if state_file.exists():
        state = load_state(state_file)
        if state["recipe_hash"] != rhash:
            raise UserError(
                f"{state_file}: resume state was made by a different recipe; use a fresh output folder"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, train_time = state["step"], state["train_time"]
        curve = state.get("curve", [])
        _log(f"{name}: resuming at step {step}/{total_steps}", logfile)
    if step >= total_steps and (out / name / META_FILE).exists():
        return RunResult(name, [], step, tokens_per_step * step / max(train_time, 1e-9), train_time)

    batches = Batches(
        train_packed,
        recipe["seq_len"],
        recipe["batch_size"],
        recipe["seed"],
        recipe["stream_weights"],
    )
    windows = heldout_windows(heldout_packed, recipe["seq_len"], recipe["eval_windows"])
    windows = {k: (x.to(device), y.to(device)) for k, (x, y) in windows.items()}
    n_params_total = sum(p.numel() for p in model.parameters())  # tied head counted once
    n_embed = model.get_input_embeddings().weight.numel()

    def save() -> None:
        fields = {"step": step, "train_time": train_time, "recipe_hash": rhash, "curve": curve}
        save_state(state_file, model, opt, **fields)

    def publish(train_loss: float, heldout: dict[str, float]) -> Path:
        tokens = step * tokens_per_step
        final = step == total_steps
        dest = out / (name if final else f"{name}@{format_tokens(tokens)}")
        meta = {
            "name": dest.name,
            "family": recipe["family"],
            "member": name,
            "shape": shape_to_dict(shape),
            "model_size": n_params_total,
            "model_size_nonembed": n_params_total - n_embed,
            "pretrain_tokens": tokens,
            "steps": step,
            "final": final,
            "heldout_loss": heldout,
            "heldout_curve": list(curve),
            "train_loss": train_loss,
            "tokens_per_second": tokens / max(train_time, 1e-9),
            "train_seconds": train_time,
            "seed": recipe["seed"],
            "peak_lr": sched["lr"],
            "recipe_hash": rhash,
            "tokenizer_sha256": tok_hash,
        }
        write_checkpoint(dest, model, tok_dir, meta)
        _log(
            f"{name}: checkpoint {dest.name} tokens={tokens} heldout="
            + " ".join(f"{k}={v:.3f}" for k, v in heldout.items()),
            logfile,
        )
        return dest

    # ---- the hot path: one batch, one step -----------------------------------------------
    # Each step's loss stays on the device until it is read (every step on the CPU, where a
    # read costs nothing; on CUDA, where it is a host-device sync, every log_every steps and at
    # checkpoints): the same values, the same EMA and the same NaN stop, read in bulk.
    every = loss_read_every(torch.device(device), recipe["log_every"])
    pending: list[Any] = []
    ema, t_log, steps_this_call = None, time.perf_counter(), 0
    t_seg = time.perf_counter()
    while step < total_steps:
        lr = pretrain_lr(step, total_steps, sched)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batches.get(step)
        x, y = _to_device(x, device), _to_device(y, device)
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss.backward()
        if recipe["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        pending.append(loss.detach())
        step += 1
        steps_this_call += 1
        # ---------------------------------------------------------------------------------------
        at_log = step % recipe["log_every"] == 0 or step == total_steps
        at_ckpt = step in ckpt_steps or step % resume_every == 0 or step == total_steps
        stopping = stop_after is not None and steps_this_call >= stop_after
        if not (len(pending) >= every or at_log or at_ckpt or stopping):
            continue
        _sync(device)
        train_time += time.perf_counter() - t_seg
        values = read_losses(pending)
        first = step - len(pending) + 1
        pending.clear()
        for i, lv in enumerate(values):
            if not math.isfinite(lv):
                raise UserError(
                    f"{name}: training loss became {lv} at step {first + i}; "
                    "lower the learning rate"
                )
            ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        if at_log:
            dt = time.perf_counter() - t_log
            _log(
                f"{name}: step {step}/{total_steps} loss {ema:.3f} lr {lr:.2e} "
                f"{recipe['log_every'] * tokens_per_step / dt:.0f} tok/s",
                logfile,
            )
            t_log = time.perf_counter()
        if at_ckpt:
            heldout = evaluate(model, windows)  # no randomness: the run is unchanged by it
            curve.append({"tokens": step * tokens_per_step, "heldout_loss": heldout})
            if step in ckpt_steps:
                published.append(publish(ema, heldout))
            save()
        if stopping and step < total_steps:
            save()
            raise KeyboardInterrupt(f"{name}: stopped after {steps_this_call} steps")
        t_seg = time.perf_counter()
    return RunResult(
        name, published, step, step * tokens_per_step / max(train_time, 1e-9), train_time
    )
