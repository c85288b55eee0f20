"""IA3, added as one method file plus one registry name: the engine, the CLI and a study take
it with nothing else changed."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from ftscale.finetune import run_finetune
from ftscale.finetune.methods import METHODS


def test_ia3_scales_keys_values_and_the_down_projection_input(toy):
    import torch

    task, tok, model = toy
    cfg = model.config
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    kv = cfg.num_key_value_heads * (d // cfg.num_attention_heads)
    ids = torch.tensor([[1, 5, 9, 13]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    a = METHODS["ia3"].apply(copy.deepcopy(model), tok, None, torch.Generator().manual_seed(0))
    # one vector on the k and v outputs, one on the down projection's input, per layer
    assert a.pet_params == sum(p.numel() for p in a.trainable) == layers * (2 * kv + ff)
    assert all(torch.all(p == 1) for p in a.trainable)  # starts as the base model ...
    with torch.no_grad():
        assert torch.allclose(a.model(input_ids=ids).logits, before, atol=1e-6)
    frozen = [p for p in a.model.parameters() if not p.requires_grad]
    assert sum(p.numel() for p in frozen) == sum(p.numel() for p in model.parameters())
    assert a.prefix is None and METHODS["ia3"].pet_size(8) is None
    assert d > 0


def test_ia3_run_reduces_the_loss_and_records_its_cost(toy, quick):
    task, tok, model = toy
    rec = run_finetune(quick(method="ia3", lr=3e-2), model=model, tokenizer=tok, task=task)
    assert rec["status"] == "done" and rec["method"] == "ia3" and rec["pet_size"] is None
    assert rec["loss"] < rec["zero_shot_loss"] - 0.01
    assert 0 < rec["pet_params"] == rec["trainable_params"] < rec["model_size"] / 10
    tokens = rec["flops"] / (4 * rec["model_size"] + 6 * rec["trainable_params"])
    assert tokens == pytest.approx(round(tokens)) and tokens > 0


def test_ia3_takes_no_pet_size():
    from ftscale.errors import UserError
    from ftscale.finetune import FinetuneConfig, validate

    with pytest.raises(UserError, match="does not apply to method 'ia3'"):
        validate(FinetuneConfig(model="m", task="t", method="ia3", rank=4))


def test_ia3_from_the_cli_help_and_a_study_file():
    from ftscale.study.plan import plan_study
    from ftscale.study.spec import parse_study
    from ftscale.testing.simulated import simulated_study

    out = subprocess.run(
        [sys.executable, "-m", "ftscale", "finetune", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "ia3" in out.stdout
    d = simulated_study()
    d["study"]["methods"] = ["lora", "ia3"]
    d["data_sizes"] = {"lora": [50, 100, 200], "ia3": [50, 100, 200]}
    study = parse_study(d)
    runs = plan_study(study, data_hashes={"sim-task": "0"})
    ia3 = [r.spec for r in runs if r.spec["method"] == "ia3"]
    assert ia3 and all(s["pet_size"] is None for s in ia3)
    d["study"]["factor"], d["study"]["models"] = "pet_size", ["sim-1e6"]
    d["pet_sizes"] = {"lora": [4, 8]}
    with pytest.raises(Exception, match="PET methods only"):
        parse_study(d)


@pytest.mark.slow
def test_ia3_runs_in_a_study_on_the_family(tmp_path, monkeypatch):
    """``ftscale study run`` then ``study fit`` with IA3 beside LoRA on two family models."""
    import json

    monkeypatch.delenv("FTSCALE_RUN_FN", raising=False)
    study = tmp_path / "s.toml"
    study.write_text(
        '[study]\nname = "ia3"\ntasks = ["translate-en-de"]\nfactor = "model_size"\n'
        'models = ["ftlm-1", "ftlm-2"]\nmethods = ["lora", "ia3"]\nseeds = 1\n'
        "[data_sizes]\nlora = [32, 64, 128]\nia3 = [32, 64, 128]\n"
        "[training]\nsteps = 6\neval_every = 3\ndecode_examples = 0\ndev_examples = 16\n"
        'test_examples = 16\n[fit]\nlaws = ["power"]\nholdout_largest = []\nbootstrap = 0\n'
    )
    run = [sys.executable, "-m", "ftscale", "study"]
    out = subprocess.run(
        [*run, "run", str(study), "--workers", "1", "--no-progress", "--json"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["counts"]["done"] == 12
    out = subprocess.run([*run, "fit", str(study), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    fitted = {f["group"]["method"] for f in json.loads(out.stdout)["fits"]}
    assert fitted == {"lora", "ia3"}
