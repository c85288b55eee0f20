"""The shape rule and the Llama configurations it builds."""

from __future__ import annotations

import pytest

from ftscale.errors import UserError
from ftscale.models.family import Shape, family_shapes, llama_config, shape_from_dict


def test_rule_gives_at_least_five_sizes_spanning_30x_with_depth_and_width_growing():
    shapes = list(family_shapes().values())
    assert len(shapes) >= 5
    nonembed = [s.params_nonembed() for s in shapes]
    assert nonembed[-1] / nonembed[0] >= 30
    assert 0.02e6 <= nonembed[0] <= 0.1e6 and 1e6 <= nonembed[-1] <= 3e6
    for a, b in zip(shapes, shapes[1:], strict=False):
        assert b.n_layer > a.n_layer and b.d_model > a.d_model


def test_counts_match_the_instantiated_llama():
    import torch
    from transformers import LlamaForCausalLM

    for shape in family_shapes().values():
        with torch.device("meta"):
            model = LlamaForCausalLM(llama_config(shape))
        total = sum(p.numel() for p in model.parameters())
        assert total == shape.params_total()
        assert total - model.get_input_embeddings().weight.numel() == shape.params_nonembed()
        assert model.config.tie_word_embeddings


@pytest.mark.parametrize(
    "bad",
    [
        {"n_layer": 2, "d_model": 50, "n_head": 4, "d_ff": 64},  # 50 not divisible by 4
        {"n_layer": 2, "d_model": 36, "n_head": 4, "d_ff": 64},  # head width 9 is odd (RoPE)
        {"n_layer": 0, "d_model": 32, "n_head": 2, "d_ff": 64},
        {"n_layer": 2, "d_model": -32, "n_head": 2, "d_ff": 64},
        {"n_layer": 2.5, "d_model": 32, "n_head": 2, "d_ff": 64},
        {"n_layer": 2, "d_model": 32, "n_head": 2},  # d_ff missing
        {"n_layer": 2, "d_model": 32, "n_head": 2, "d_ff": 64, "heads": 3},  # unknown key
    ],
)
def test_impossible_shapes_are_user_errors(bad):
    with pytest.raises(UserError, match="shape"):
        shape_from_dict(bad)


def test_llama_config_validates_first():
    with pytest.raises(UserError):
        llama_config(Shape(n_layer=1, d_model=30, n_head=4, d_ff=8))


def test_peft_lora_and_prompt_tuning_apply_unchanged():
    import torch
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    shape = family_shapes()["ftlm-1"]
    x = torch.randint(0, shape.vocab_size, (2, 12))
    lora = get_peft_model(
        LlamaForCausalLM(llama_config(shape)),
        LoraConfig(
            r=4,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
            task_type=TaskType.CAUSAL_LM,
        ),
    )
    out = lora(input_ids=x, labels=x)
    out.loss.backward()
    assert (
        0 < sum(p.numel() for p in lora.parameters() if p.requires_grad) < shape.params_nonembed()
    )
    prompt = get_peft_model(
        LlamaForCausalLM(llama_config(shape)),
        PromptTuningConfig(num_virtual_tokens=5, task_type=TaskType.CAUSAL_LM),
    )
    out = prompt(input_ids=x, labels=x)
    assert out.logits.shape == (2, 12 + 5, shape.vocab_size)  # virtual tokens are prepended
    out.loss.backward()
    assert sum(p.numel() for p in prompt.parameters() if p.requires_grad) == 5 * shape.d_model
