"""What a finetuning run needs from the machine: the device, the memory it may use and a guard
that refuses a run too large for it (before gigabytes of weights are read), the peak memory a
run used, parameter counts of the base model (:func:`ftscale.models.training.count_parameters`,
re-exported), and a device barrier for honest timings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.finetune.config import FinetuneConfig
from ftscale.models.training import count_parameters

__all__ = [
    "available_memory",
    "check_memory",
    "count_parameters",
    "estimate_train_bytes",
    "peak_memory",
    "resolve_device",
    "sync",
]


def resolve_device(name: str) -> Any:
    """``torch.device(name)`` once :func:`ftscale.devices.check_device` accepts it (unknown
    names, absent CUDA/MPS, an out-of-range CUDA index: :class:`UserError`)."""
    import torch

    from ftscale.devices import check_device

    return torch.device(check_device(name))


def available_memory(device: Any) -> int:
    """Bytes the run may use: free GPU memory, or the kernel's MemAvailable on the CPU."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_train_bytes(
    model: Any, trainable: int, config: FinetuneConfig, prefix: int, candidates: int = 1
) -> int:
    """Rough peak bytes of training: weights, grads + AdamW moments + best copy of the
    trainable parameters, activations (~34 hidden-size values per layer and token, the usual
    transformer estimate) and target logits; each further candidate learning rate adds its own
    moments, best copy and parked parameters (four more copies of the trainable parameters).
    An order-of-magnitude guard, not an accounting."""
    cfg = model.config
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    tokens = config.batch_size * (config.max_length + prefix)
    act = tokens * layers * hidden * 34 * 4
    logits = config.batch_size * config.max_length * vocab * 4 * 3
    copies = 4 + 4 * max(0, candidates - 1)
    return int(weights + trainable * 4 * copies + act + logits)


def check_memory(needed: int, device: Any, config: FinetuneConfig) -> None:
    """Refuse (:class:`UserError`) a run that needs more than ``device`` has (bytes)."""
    have = available_memory(device)
    if needed > have:
        raise UserError(
            f"model {config.model!r} needs about {needed / 2**30:.1f} GiB to train with batch "
            f"{config.batch_size} x {config.max_length} tokens, but {device} has "
            f"{have / 2**30:.1f} GiB available"
        )


def peak_memory(device: Any) -> int:
    """Peak bytes of this process: CUDA's max allocated, or the CPU's max resident set size."""
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB


def sync(device: Any) -> None:
    """Wait for the device's queued work (CUDA), so wall-clock timings are honest."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
