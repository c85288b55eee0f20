"""Loading checkpoints ftscale did not write, with transformers: the causal-LM check and the
dequantising GGUF read (the source of :mod:`ftscale.models.gguf`'s cached folders)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ftscale.errors import UserError


def one_line(exc: BaseException) -> str:
    """An exception as one line of at most 300 characters (for UserError messages)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


#: Model types that are encoders (masked LMs): transformers can bolt a causal head on some of
#: them, but they were not pretrained to continue text, so finetuning them here means nothing.
ENCODER_TYPES = frozenset(
    {
        "bert",
        "roberta",
        "distilbert",
        "albert",
        "electra",
        "deberta",
        "deberta-v2",
        "xlm-roberta",
        "camembert",
        "mpnet",
        "ernie",
        "modernbert",
    }
)


def check_causal_lm(config: Any, path: str) -> None:
    """UserError unless ``config`` describes a decoder-only causal language model."""
    archs = list(getattr(config, "architectures", None) or [])
    mtype = str(getattr(config, "model_type", "") or "")
    if getattr(config, "is_encoder_decoder", False):
        raise UserError(
            f"an encoder-decoder model ({mtype}): ftscale finetunes decoder-only causal LMs",
            path=path,
        )
    causal = [a for a in archs if a.endswith(("ForCausalLM", "LMHeadModel"))]
    if mtype in ENCODER_TYPES or (archs and not causal):
        what = archs[0] if archs else mtype
        raise UserError(
            f"not a causal language model ({what}): ftscale finetunes decoder-only causal LMs",
            path=path,
        )


def load_from_gguf(folder: Path, fname: str) -> tuple[Any, Any]:
    """(float32 dequantised model without its quantizer, tokenizer), read from the GGUF file
    ``folder/fname`` by transformers (slow: the conversion's source, :mod:`ftscale.models.gguf`)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ftscale.models.gguf import strip_quantizer

    where = str(folder / fname)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=fname)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"cannot load the tokenizer: {one_line(exc)}", path=where) from None
    try:
        config = AutoConfig.from_pretrained(str(folder), gguf_file=fname)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"not a model: {one_line(exc)}", path=where) from None
    check_causal_lm(config, where)
    kwargs: dict[str, Any] = {"gguf_file": fname, "dtype": torch.float32}
    with contextlib.suppress(ImportError):
        from transformers import GgufConfig

        # dequantise even where a packed-weight kernel is installed: these weights are trained
        kwargs["quantization_config"] = GgufConfig(gguf_file=where, dequantize=True)
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
        except TypeError:  # a transformers without GgufConfig(dequantize=)
            kwargs.pop("quantization_config", None)
            model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
    except Exception as exc:  # noqa: BLE001 - truncated weights, unsupported architecture
        raise UserError(f"cannot load the model: {one_line(exc)}", path=where) from None
    return strip_quantizer(model), tokenizer
