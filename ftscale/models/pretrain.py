"""Causal-LM pretraining of the family: a plain, explicit training loop (nanoGPT-style).

One run trains one model on packed token windows sampled from the multilingual pretraining
streams, with AdamW and a cosine schedule with linear warm-up, and publishes checkpoints at chosen
token counts. The batch at step ``s`` depends only on ``(seed, s)`` and the model has no dropout,
so a run is deterministic for a seed, and a run resumed from its saved state reproduces the
uninterrupted one bit for bit.

Layout of an output folder ``OUT`` (the shipped family is one such folder):

    OUT/family.json          recipe, members, losses, throughput, wall time
    OUT/tokenizer/           the shared tokenizer
    OUT/ftlm-k/              final checkpoint of member k (config, fp16 safetensors, tokenizer,
                             ftscale_meta.json)
    OUT/ftlm-k@<tokens>/     intermediate checkpoints (pretraining-tokens factor)
    OUT/.state/              resume state (fp32 weights + AdamW moments) and token caches; removed
                             when the whole family is done unless ``keep_state``

Every checkpoint folder is written with :func:`ftscale.fsutil.atomic_dir`, and its
``ftscale_meta.json`` records the SHA-256 of the weights, so a half-written checkpoint is never
loaded as if complete.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.fsutil import atomic_dir, atomic_write, read_user_json
from ftscale.models.family import (
    FAMILY_NAME,
    N_MEMBERS,
    VOCAB_SIZE,
    Shape,
    family_shapes,
    shape_from_dict,
    shape_to_dict,
)

META_FILE = "ftscale_meta.json"
FAMILY_FILE = "family.json"
STREAMS = ("en", "de", "zh", "en-de", "en-zh")

#: The recipe that built the shipped family (``ftscale pretrain --family default``).
#: Every member sees the same tokens in the same order; only the shape differs.
DEFAULT_RECIPE: dict[str, Any] = {
    "family": FAMILY_NAME,
    "members": N_MEMBERS,  # ftlm-1 .. ftlm-6 from the shape rule in ftscale.models.family
    "shapes": None,  # or {name: {n_layer, d_model, n_head, d_ff}} to replace the rule
    "vocab_size": VOCAB_SIZE,
    # Sized to the CPU budget (~40 min for the family on 2 idle cores), not to convergence: at
    # 1,048,576 tokens every size was still step-limited and the loss was not monotone in size.
    "tokens": 4_194_304,  # training tokens per member (4,096 steps of 4 x 256)
    "seq_len": 256,
    # Measured on the pilot: at equal tokens, batch 4 at lr 1e-2 beat batch 8 at lr 3e-3
    # (more, noisier steps win this early in training).
    "batch_size": 4,
    "lr": 1e-2,
    # Peak lr falls with width above this width: lr * min(1, (lr_ref_width / d_model)^2).
    # Measured on the pilot: ftlm-4 (d=96) learnt faster at 1e-2 than at 3e-3, ftlm-6 (d=128)
    # slower (the usual pattern: wider models want a smaller step). null: one lr for all.
    "lr_ref_width": 96,
    # Peak lr of named members, replacing the width rule for them (a per-size lr table, as GPT-3
    # and Pythia use); null: the rule for all. ftlm-5: best of a sweep {7.3e-3 (the rule), 5.6e-3,
    # 4e-3} by mean held-out loss (docs/models.md).
    "member_lr": {"ftlm-5": 5.6e-3},
    "min_lr_ratio": 0.1,
    "warmup_frac": 0.05,
    "weight_decay": 0.1,
    "beta1": 0.9,
    "beta2": 0.95,
    "grad_clip": 1.0,
    "seed": 0,
    # Sampling share of each stream (normalised); null samples in proportion to stream size.
    "stream_weights": None,
    # Members whose intermediate checkpoints are published (pretraining-tokens factor).
    "intermediate_members": ["ftlm-4"],
    "checkpoint_fractions": [0.125, 0.25, 0.5, 1.0],
    # Resume state is saved at least this often (fraction of the run).
    "resume_every_frac": 0.125,
    "eval_windows": 64,  # held-out windows of seq_len tokens per stream
    "log_every": 50,  # steps
}


def recipe_from(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The default recipe with ``overrides`` applied, validated (bad values: :class:`UserError`)."""
    recipe = copy.deepcopy(DEFAULT_RECIPE)
    for key, value in (overrides or {}).items():
        if key not in recipe:
            raise UserError(f"unknown pretraining recipe key {key!r} (known: {sorted(recipe)})")
        recipe[key] = value
    for key in (
        "tokens",
        "seq_len",
        "batch_size",
        "vocab_size",
        "members",
        "eval_windows",
        "log_every",
    ):
        v = recipe[key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise UserError(f"recipe: {key} must be a positive integer, got {v!r}")
    for key in ("lr", "warmup_frac", "min_lr_ratio", "resume_every_frac"):
        v = recipe[key]
        if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise UserError(f"recipe: {key} must be a non-negative number, got {v!r}")
    if "member_lr" not in (overrides or {}) and recipe["member_lr"]:
        # The default table names default members: a recipe with other members drops them.
        names = set(recipe_shapes(recipe))
        recipe["member_lr"] = {k: v for k, v in recipe["member_lr"].items() if k in names} or None
    mlr = recipe["member_lr"]
    if mlr is not None and (
        not isinstance(mlr, dict)
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in mlr.values()
        )
    ):
        raise UserError(f"recipe: member_lr must map member names to positive numbers, got {mlr!r}")
    if recipe["tokens"] < recipe["seq_len"] * recipe["batch_size"]:
        raise UserError("recipe: tokens must cover at least one batch (batch_size * seq_len)")
    fr = recipe["checkpoint_fractions"]
    if not fr or any(not (0 < f <= 1) for f in fr) or 1.0 not in fr:
        raise UserError("recipe: checkpoint_fractions must lie in (0, 1] and include 1.0")
    return recipe


def recipe_shapes(recipe: dict[str, Any]) -> dict[str, Shape]:
    """Member names and shapes of a recipe, smallest first."""
    if recipe["shapes"]:
        if not isinstance(recipe["shapes"], dict):
            raise UserError("recipe: shapes must map a model name to its shape")
        shapes = {}
        for name, d in recipe["shapes"].items():
            if not isinstance(d, dict):
                raise UserError(f"recipe: shape of {name!r} must be a mapping")
            shapes[str(name)] = shape_from_dict({"vocab_size": recipe["vocab_size"], **d})
        return dict(sorted(shapes.items(), key=lambda kv: kv[1].params_total()))
    return family_shapes(recipe["members"], recipe["vocab_size"])


def recipe_hash(recipe: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def format_tokens(n: int) -> str:
    """Compact token count for checkpoint names: 262144 -> '262k', 2097152 -> '2.1M'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            v = n / div
            s = f"{v:.0f}" if v >= 100 else f"{v:.3g}"
            return f"{s}{suffix}"
    return str(n)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# data: tokenise the streams once, cache the packed arrays, sample windows by (seed, step)


def _tokenizer_hash(tok_dir: Path) -> str:
    return sha256_file(tok_dir / "tokenizer.json")


def pack_streams(texts: dict[str, list[str]], tokenizer: Any) -> dict[str, Any]:
    """Tokenise each stream's documents, each followed by EOS, into one uint16/int32 array."""
    import numpy as np

    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError(
            "the tokenizer has no EOS token; the pretraining text needs one between documents"
        )
    dtype = np.uint16 if len(tokenizer) <= 65535 else np.int32
    packed = {}
    for stream in sorted(texts):
        docs = [d for d in texts[stream] if d]
        enc = (
            tokenizer.backend_tokenizer.encode_batch(docs, add_special_tokens=False) if docs else []
        )
        ids: list[int] = []
        for e in enc:
            ids.extend(e.ids)
            ids.append(eos)
        packed[stream] = np.asarray(ids, dtype=dtype)
    return packed


def _cached_packed(
    state_dir: Path, split: str, texts: dict[str, list[str]], tokenizer: Any, tok_hash: str
) -> Path:
    """Pack ``texts`` once per (tokenizer, corpus) into ``state_dir``; return the cache file."""
    import numpy as np

    key = hashlib.sha256(
        (tok_hash + json.dumps({s: len(v) for s, v in sorted(texts.items())})).encode()
    ).hexdigest()[:16]
    path = state_dir / f"tokens-{split}-{key}.npz"
    if not path.exists():
        packed = pack_streams(texts, tokenizer)
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **packed)
    return path


class Batches:
    """Training windows: stream chosen by weight, offset uniform, both drawn from rng(seed, step)."""

    def __init__(
        self,
        packed: dict[str, Any],
        seq_len: int,
        batch_size: int,
        seed: int,
        weights: dict[str, float] | None,
    ):
        import numpy as np

        self.streams = [s for s in sorted(packed) if len(packed[s]) > seq_len + 1]
        if not self.streams:
            raise UserError(
                f"the pretraining text is too short: no stream has more than {seq_len + 1} tokens"
            )
        self.data = [packed[s] for s in self.streams]
        if weights:
            unknown = set(weights) - set(packed)
            if unknown:
                raise UserError(f"recipe: stream_weights names unknown streams {sorted(unknown)}")
            w = np.array([float(weights.get(s, 0.0)) for s in self.streams])
        else:
            w = np.array([len(d) for d in self.data], dtype=float)
        if not (w >= 0).all() or w.sum() <= 0:
            raise UserError("recipe: stream_weights must be non-negative with a positive sum")
        self.p = w / w.sum()
        self.seq_len, self.batch_size, self.seed = seq_len, batch_size, seed

    def get(self, step: int) -> tuple[Any, Any]:
        import numpy as np
        import torch

        rng = np.random.default_rng([self.seed, step])
        which = rng.choice(len(self.streams), size=self.batch_size, p=self.p)
        rows = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int64)
        for i, j in enumerate(which):
            off = int(rng.integers(0, len(self.data[j]) - self.seq_len - 1))
            rows[i] = self.data[j][off : off + self.seq_len + 1]
        t = torch.from_numpy(rows)
        return t[:, :-1], t[:, 1:]


def heldout_windows(packed: dict[str, Any], seq_len: int, n_windows: int) -> dict[str, Any]:
    """The first ``n_windows`` consecutive windows of each held-out stream (fixed, so comparable)."""
    import torch

    out = {}
    for stream, arr in sorted(packed.items()):
        n = min(n_windows, (len(arr) - 1) // seq_len)
        if n >= 1:
            a = torch.from_numpy(arr[: n * seq_len + 1].astype("int64"))
            out[stream] = (a[:-1].view(n, seq_len), a[1:].view(n, seq_len))
        elif len(arr) >= 2:
            a = torch.from_numpy(arr.astype("int64"))
            out[stream] = (a[:-1].view(1, -1), a[1:].view(1, -1))
    return out


def evaluate(model: Any, windows: dict[str, Any], batch_size: int = 16) -> dict[str, float]:
    """Mean next-token NLL per held-out stream, nats/token."""
    import torch
    import torch.nn.functional as F

    model.eval()
    losses = {}
    with torch.no_grad():
        for stream, (x, y) in windows.items():
            total, count = 0.0, 0
            for i in range(0, x.shape[0], batch_size):
                logits = model(input_ids=x[i : i + batch_size]).logits
                yy = y[i : i + batch_size]
                total += F.cross_entropy(
                    logits.flatten(0, 1).float(), yy.flatten(), reduction="sum"
                ).item()
                count += yy.numel()
            losses[stream] = total / count
    model.train()
    return losses


# ----------------------------------------------------------------------------------------------
# one model


@dataclass
class RunResult:
    name: str
    checkpoints: list[Path]
    steps: int
    tokens_per_second: float
    wall_seconds: float


def lr_at(step: int, total_steps: int, recipe: dict[str, Any]) -> float:
    """Linear warm-up to ``lr``, then cosine decay to ``lr * min_lr_ratio`` at the last step."""
    warmup = max(1, int(recipe["warmup_frac"] * total_steps))
    lr, min_lr = recipe["lr"], recipe["lr"] * recipe["min_lr_ratio"]
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def peak_lr(recipe: dict[str, Any], shape: Shape, name: str | None = None) -> float:
    """The member's peak learning rate: its ``member_lr`` entry, else the recipe's width rule."""
    table = recipe.get("member_lr") or {}
    if name is not None and name in table:
        return float(table[name])
    ref = recipe.get("lr_ref_width")
    if not ref:
        return float(recipe["lr"])
    return float(recipe["lr"]) * min(1.0, (ref / shape.d_model) ** 2)


#: Recipe keys that do not enter one member's hash: they choose which members exist, or they set
#: the peak lr, which enters as the member's own value (so a lr rule that leaves a member's lr
#: unchanged leaves its checkpoints valid), or they only change logging.
_NOT_MEMBER_KEYS = frozenset(
    {"members", "shapes", "lr", "lr_ref_width", "member_lr", "intermediate_members", "log_every"}
)


def member_hash(recipe: dict[str, Any], name: str, shape: Shape) -> str:
    """Hash of everything that determines member ``name``'s training and its checkpoints (shape,
    peak lr, schedule, data, evaluation, checkpoint steps); recorded in each checkpoint."""
    own = {k: v for k, v in recipe.items() if k not in _NOT_MEMBER_KEYS}
    total_steps = recipe["tokens"] // (recipe["batch_size"] * recipe["seq_len"])
    own.update(
        _name=name,
        _shape=shape_to_dict(shape),
        _peak_lr=peak_lr(recipe, shape, name),
        _checkpoint_steps=_checkpoint_steps(name, total_steps, recipe),
    )
    return recipe_hash(own)


def _checkpoint_steps(name: str, total_steps: int, recipe: dict[str, Any]) -> list[int]:
    inter = recipe["intermediate_members"]
    if inter == "all" or name in (inter or []):
        steps = {max(1, round(f * total_steps)) for f in recipe["checkpoint_fractions"]}
    else:
        steps = {total_steps}
    return sorted(steps)


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
    ckpt_steps = _checkpoint_steps(name, total_steps, recipe)
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
    tok_hash = _tokenizer_hash(tok_dir)
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
    config = llama_config(
        shape,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
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
        state = torch.load(state_file, map_location="cpu", weights_only=False)
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

    def save_state() -> None:
        with atomic_write(state_file, "wb") as fh:
            torch.save(
                {
                    "model": model.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "train_time": train_time,
                    "recipe_hash": rhash,
                    "curve": curve,
                },
                fh,
            )

    def publish(train_loss: float, heldout: dict[str, float]) -> Path:
        tokens = step * tokens_per_step
        final = step == total_steps
        dest = out / (name if final else f"{name}@{format_tokens(tokens)}")
        with atomic_dir(dest, owned=lambda e: (e.parent / META_FILE).is_file()) as tmp:
            half = copy.deepcopy(model).to("cpu", torch.float16)
            half.save_pretrained(tmp, safe_serialization=True)
            for f in tok_dir.iterdir():
                shutil.copy2(f, tmp / f.name)
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
                "weights_sha256": sha256_file(tmp / "model.safetensors"),
            }
            with atomic_write(tmp / META_FILE) as fh:
                json.dump(meta, fh, indent=2)
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
        lr = lr_at(step, total_steps, sched)
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
            save_state()
        if stopping and step < total_steps:
            save_state()
            raise KeyboardInterrupt(f"{name}: stopped after {steps_this_call} steps")
        t_seg = time.perf_counter()
    return RunResult(
        name, published, step, step * tokens_per_step / max(train_time, 1e-9), train_time
    )


# ----------------------------------------------------------------------------------------------
# the family


def _load_corpus(corpus: str | os.PathLike | dict | None) -> dict[str, dict[str, list[str]]]:
    """``{"train": {stream: docs}, "heldout": {...}}`` from a dict, a JSON file, or ftscale.data."""
    if corpus is None:
        try:
            from ftscale.data import load_pretraining
        except ImportError as exc:
            raise UserError(
                f"the pretraining text (ftscale.data.load_pretraining) is not available: {exc}"
            ) from None
        return {"train": load_pretraining("train"), "heldout": load_pretraining("heldout")}
    data = corpus if isinstance(corpus, dict) else read_user_json(corpus, "corpus")
    if not isinstance(data, dict) or not {"train", "heldout"} <= set(data):
        raise UserError('corpus must be {"train": {stream: [documents]}, "heldout": {...}}')
    for split in ("train", "heldout"):
        if not isinstance(data[split], dict) or not all(
            isinstance(v, list) and all(isinstance(d, str) for d in v) for v in data[split].values()
        ):
            raise UserError(f"corpus {split!r} must map stream names to lists of documents")
    return data


def _train_member_worker(
    out: str, name: str, shape: dict, recipe: dict, device: str = "cpu"
) -> dict:
    """Process-pool entry point: one member, one thread."""
    from transformers import PreTrainedTokenizerFast

    out_p = Path(out)
    tok = PreTrainedTokenizerFast.from_pretrained(out_p / "tokenizer")
    state = out_p / ".state"
    corpus = json.loads((state / "corpus_ref.json").read_text())
    packed = {split: _load_npz(state / corpus[split]) for split in ("train", "heldout")}
    res = train_model(
        out_p,
        name,
        shape_from_dict(shape),
        recipe,
        tok,
        packed["train"],
        packed["heldout"],
        device=device,
    )
    return {
        "name": res.name,
        "tokens_per_second": res.tokens_per_second,
        "train_seconds": res.wall_seconds,
    }


def _packed_hash(packed: dict[str, Any]) -> str:
    h = hashlib.sha256()
    for name in sorted(packed):
        h.update(name.encode() + b"\0")
        h.update(packed[name].astype("<i4").tobytes())
    return h.hexdigest()


def _load_npz(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def pretrain_family(
    out: str | os.PathLike,
    recipe: dict[str, Any] | None = None,
    *,
    corpus: str | os.PathLike | dict | None = None,
    tokenizer: Any = None,
    only: list[str] | None = None,
    device: str = "cpu",
    workers: int = 1,
    keep_state: bool = False,
) -> dict:
    """Pretrain every member of a recipe into ``out`` and write ``family.json``; returns it.

    ``corpus`` defaults to :func:`ftscale.data.load_pretraining`; ``tokenizer`` defaults to
    :func:`ftscale.data.train_tokenizer` on the training text (``vocab_size`` tokens). Members
    already finished in ``out`` are skipped; an interrupted member resumes from its state.
    ``workers`` single-threaded processes train members in parallel (largest first).
    ``device`` ("cpu", "cuda", ...) is where the training runs; the shipped family was trained
    on the CPU, and another device reproduces it only up to floating-point differences.
    """
    t_start = time.perf_counter()
    recipe = recipe_from(recipe)
    shapes = recipe_shapes(recipe)
    stray = sorted(set(recipe["member_lr"] or {}) - set(shapes))
    if stray:
        raise UserError(f"recipe: member_lr names unknown member(s) {stray}; have {list(shapes)}")
    if only:
        unknown = [n for n in only if n not in shapes]
        if unknown:
            raise UserError(f"unknown member(s) {unknown}; this recipe has {list(shapes)}")
        shapes = {n: s for n, s in shapes.items() if n in only}
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a folder", path=str(out))
    fam_file = out / FAMILY_FILE
    if fam_file.exists():
        old = json.loads(fam_file.read_text())
        if old.get("recipe_hash") != recipe_hash(recipe):
            raise UserError(
                "folder holds a family built with a different recipe; use a fresh --out",
                path=str(out),
            )
    state = out / ".state"
    state.mkdir(parents=True, exist_ok=True)
    texts = _load_corpus(corpus)

    tok_dir = out / "tokenizer"
    if tokenizer is None and not (tok_dir / "tokenizer.json").exists():
        from ftscale.data import train_tokenizer

        all_train = [d for s in sorted(texts["train"]) for d in texts["train"][s]]
        tokenizer = train_tokenizer(all_train, recipe["vocab_size"])
    if tokenizer is not None:
        if len(tokenizer) > recipe["vocab_size"]:
            raise UserError(
                f"tokenizer has {len(tokenizer)} tokens, more than vocab_size {recipe['vocab_size']}"
            )
        if tokenizer.eos_token_id is None:
            raise UserError("the tokenizer has no EOS token")
        if (tok_dir / "tokenizer.json").exists():
            import tempfile

            with tempfile.TemporaryDirectory() as td:
                tokenizer.save_pretrained(td)
                if sha256_file(Path(td) / "tokenizer.json") != _tokenizer_hash(tok_dir):
                    raise UserError(
                        "folder holds a different tokenizer; use a fresh --out", path=str(out)
                    )
        else:
            with atomic_dir(tok_dir) as tmp:
                tokenizer.save_pretrained(tmp)
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    tok_hash = _tokenizer_hash(tok_dir)
    ref = {}
    for split in ("train", "heldout"):
        ref[split] = _cached_packed(state, split, texts[split], tok, tok_hash).name
    with atomic_write(state / "corpus_ref.json") as fh:
        json.dump(ref, fh)
    packed = {split: _load_npz(state / ref[split]) for split in ("train", "heldout")}
    stream_tokens = {s: int(len(a)) for s, a in packed["train"].items()}
    corpus_sha256 = {split: _packed_hash(arrays) for split, arrays in packed.items()}
    del packed

    todo = sorted(shapes.items(), key=lambda kv: -kv[1].params_total())  # largest first
    results: dict[str, dict] = {}
    if workers <= 1:
        for name, shape in todo:
            results[name] = _train_member_worker(
                str(out), name, shape_to_dict(shape), recipe, device
            )
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futs = {
                pool.submit(_train_member_worker, str(out), n, shape_to_dict(s), recipe, device): n
                for n, s in todo
            }
            for fut, name in futs.items():
                results[name] = fut.result()

    members = []
    for name in shapes:
        ckpts = sorted(
            (p for p in out.iterdir() if p.name == name or p.name.startswith(name + "@")),
            key=lambda p: json.loads((p / META_FILE).read_text())["pretrain_tokens"],
        )
        for p in ckpts:
            meta = json.loads((p / META_FILE).read_text())
            members.append(
                {
                    k: meta[k]
                    for k in (
                        "name",
                        "member",
                        "model_size",
                        "model_size_nonembed",
                        "pretrain_tokens",
                        "heldout_loss",
                        "tokens_per_second",
                        "train_seconds",
                        "heldout_curve",
                    )
                    if k in meta
                }
            )
    family = {
        "family": recipe["family"],
        "recipe": recipe,
        "recipe_hash": recipe_hash(recipe),
        "tokenizer_sha256": tok_hash,
        "train_stream_tokens": stream_tokens,
        # SHA-256 of the packed token streams (stream name + int array bytes, sorted by name).
        "corpus_sha256": corpus_sha256,
        "members": members,
        "workers": workers,
        "wall_seconds_this_call": time.perf_counter() - t_start,
        "cpu": _cpu_name(),
    }
    with atomic_write(fam_file) as fh:
        json.dump(family, fh, indent=2)
    if not keep_state and not only:
        shutil.rmtree(state, ignore_errors=True)
    return family


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"
