"""Torch device names checked before any work: a typo (``cudaXYZ``, ``tpu``) or a device this
machine lacks is a one-line :class:`~ftscale.errors.UserError`, not a crash minutes later."""

from __future__ import annotations

from ftscale.errors import UserError


def check_device(name: str) -> str:
    """``name`` if torch can use it here (cpu, cuda[:N], mps); else UserError. Imports torch."""
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"unknown device {name!r}: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return name
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return name
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"device {name!r} requested but MPS is not available here")
        return name
    raise UserError(f"device {name!r} is not supported: use cpu, cuda, cuda:N or mps")
