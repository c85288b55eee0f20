"""Names, model_info, load_model and the `ftscale models` / `ftscale pretrain` commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from ftscale.cli import main
from ftscale.errors import UserError
from ftscale.fsutil import atomic_dir
from ftscale.models import list_models, load_model, model_info

FIELDS = {"name", "path", "family", "model_size", "model_size_nonembed", "pretrain_tokens"}


@pytest.fixture
def on_path(tiny_family, monkeypatch):
    monkeypatch.setenv("FTSCALE_MODEL_PATH", str(tiny_family))
    return tiny_family


def test_names_resolve_to_checkpoints(on_path):
    names = [
        m.name for m in list_models() if m.family == "tiny"
    ]  # the shipped family is listed too
    assert names == ["tiny-1", "tiny-2@256", "tiny-2@512", "tiny-2@768", "tiny-2"]
    assert model_info("tiny-2@512").pretrain_tokens == 512
    assert model_info("tiny-2@0.512k").path == str(on_path / "tiny-2@512")
    assert model_info(str(on_path / "tiny-1")).name == "tiny-1"
    with pytest.raises(UserError, match="unknown model"):
        model_info("tiny-2@300")
    with pytest.raises(UserError, match="bad checkpoint name"):
        model_info("tiny-2@lots")


def test_load_model_returns_fp32_model_tokenizer_and_info(on_path):
    import torch

    model, tok, info = load_model("tiny-2")
    assert next(model.parameters()).dtype == torch.float32
    assert info.model_size == sum(p.numel() for p in model.parameters())
    ids = tok("the house is small", return_tensors="pt").input_ids
    assert torch.isfinite(model(input_ids=ids).logits).all()


def test_plain_hugging_face_folder(tmp_path, tokenizer):
    import torch
    from transformers import LlamaForCausalLM

    from ftscale.models.family import Shape, llama_config

    torch.manual_seed(0)
    shape = Shape(n_layer=1, d_model=16, n_head=2, d_ff=32, vocab_size=len(tokenizer))
    LlamaForCausalLM(llama_config(shape)).save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    info = model_info(str(tmp_path / "hf"))
    assert (info.model_size, info.model_size_nonembed) == (
        shape.params_total(),
        shape.params_nonembed(),
    )
    assert info.pretrain_tokens is None and info.family is None
    model, _, info2 = load_model(str(tmp_path / "hf"))
    assert info2.model_size == info.model_size


def test_fingerprint_of_a_hugging_face_folder_follows_its_weights(tmp_path, tokenizer):
    """Retrained weights of the same shape (same file sizes) give a new fingerprint; a copy of
    the folder elsewhere gives the same one."""
    import torch
    from transformers import LlamaForCausalLM

    from ftscale.models.family import Shape, llama_config
    from ftscale.models.registry import model_fingerprint

    shape = Shape(n_layer=1, d_model=16, n_head=2, d_ff=32, vocab_size=len(tokenizer))
    prints = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        folder = tmp_path / f"hf{seed}"
        LlamaForCausalLM(llama_config(shape)).save_pretrained(folder)
        prints.append(model_fingerprint(str(folder)))
    sizes = [(tmp_path / f"hf{s}" / "model.safetensors").stat().st_size for s in (0, 1)]
    assert sizes[0] == sizes[1]
    assert prints[0].startswith("hf:") and prints[0] != prints[1]
    assert model_fingerprint(str(_copy(tmp_path / "hf0", tmp_path / "copy"))) == prints[0]


def test_fingerprint_of_a_gguf_file_samples_large_files(tmp_path):
    import numpy as np

    from ftscale.models import registry
    from ftscale.models.registry import model_fingerprint

    rng = np.random.default_rng(0)
    f = tmp_path / "m.gguf"
    block = registry.DIGEST_BLOCK_BYTES
    data = rng.integers(0, 256, size=registry.DIGEST_BLOCKS * block * 3, dtype=np.uint8)
    f.write_bytes(data.tobytes())
    a = model_fingerprint(str(f))
    assert a.startswith("gguf:") and a == model_fingerprint(str(tmp_path))  # file or folder
    data[-1] ^= 1  # the last block is always read
    f.write_bytes(data.tobytes())
    b = model_fingerprint(str(f))
    assert b != a
    start = 22 * (len(data) - block) // (registry.DIGEST_BLOCKS - 1)  # sampled block 22 of 33
    data[start + block // 2] ^= 1
    f.write_bytes(data.tobytes())
    assert model_fingerprint(str(f)) != b
    small = tmp_path / "small"
    small.mkdir()
    (small / "s.gguf").write_bytes(b"x" * 1000)
    c = model_fingerprint(str(small))
    (small / "s.gguf").write_bytes(b"x" * 999 + b"y")  # small files are read whole
    assert model_fingerprint(str(small)) != c


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    for bad in (tmp_path / "empty", tmp_path / "notes.txt", tmp_path / "missing"):
        with pytest.raises(UserError, match="not a model"):
            load_model(str(bad))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{not json")
    with pytest.raises(UserError):
        model_info(str(tmp_path / "junk"))


def test_corrupted_weights_are_never_loaded(on_path, tmp_path):
    ck = _copy(on_path / "tiny-2", tmp_path / "ck")
    w = ck / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupted"):
        load_model(str(ck))
    (ck / "model.safetensors").unlink()
    with pytest.raises(UserError, match="incomplete"):
        load_model(str(ck))


def test_interrupted_checkpoint_write_is_never_listed_or_loaded(on_path):
    with pytest.raises(RuntimeError), atomic_dir(on_path / "tiny-9") as tmp:
        shutil.copytree(on_path / "tiny-1", tmp, dirs_exist_ok=True)
        tmp_name = tmp
        raise RuntimeError("killed mid-write")
    assert not (on_path / "tiny-9").exists()
    assert "tiny-9" not in [m.name for m in list_models()]
    # a temp folder left by a hard kill (no cleanup ran): listed never, loaded never
    leftover = on_path / tmp_name.name
    leftover.mkdir()
    (leftover / "config.json").write_text((on_path / "tiny-1" / "config.json").read_text())
    try:
        assert all(".tmp" not in m.path for m in list_models())
        with pytest.raises(UserError, match="unfinished checkpoint"):
            load_model(str(leftover))
    finally:
        shutil.rmtree(leftover)


def test_mismatched_tokenizer(on_path, tmp_path, corpus, make_tok):
    other_tokenizer = make_tok
    ck = _copy(on_path / "tiny-2", tmp_path / "ck")
    other_tokenizer(corpus["train"]["en"], 300).save_pretrained(ck)
    with pytest.raises(UserError, match="tokenizer does not match"):
        load_model(str(ck))
    # a foreign folder whose tokenizer is larger than the embedding
    (ck / "ftscale_meta.json").unlink()
    other_tokenizer(corpus["train"]["zh"] + corpus["train"]["en"], 400).save_pretrained(ck)
    with pytest.raises(UserError, match="tokenizer does not match"):
        load_model(str(ck))


def test_models_list_and_info_json(on_path, capsys):
    assert main(["models", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert all(set(m) == FIELDS for m in out["models"])
    assert [m["name"] for m in out["models"] if m["family"] == "tiny"][:2] == [
        "tiny-1",
        "tiny-2@256",
    ]
    row = next(m for m in out["models"] if m["name"] == "tiny-2@256")
    assert row["pretrain_tokens"] == 256 and row["family"] == "tiny"
    assert main(["models", "info", "tiny-2@256", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {k: info[k] for k in FIELDS} == row
    assert main(["models", "list"]) == 0
    assert "tiny-2@256" in capsys.readouterr().out


def _cli(*args, env=None):
    import os

    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return proc


@pytest.mark.parametrize("what", ["missing", "empty", "halfwritten"])
def test_cli_bad_model_path_is_one_line_exit_2(tmp_path, what):
    path = tmp_path / what
    if what == "empty":
        path.mkdir()
    if what == "halfwritten":
        path = tmp_path / ".ftlm-1.abc123.tmp"
        path.mkdir()
    proc = _cli("models", "info", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("ftscale: error:") and proc.stdout == ""


def test_cli_pretrain_impossible_shape_writes_nothing(tmp_path, corpus, tokenizer):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps({"shapes": {"bad": {"n_layer": 2, "d_model": 30, "n_head": 4, "d_ff": 8}}})
    )
    (tmp_path / "corpus.json").write_text(json.dumps(corpus))
    tokenizer.save_pretrained(tmp_path / "tok")
    proc = _cli(
        "pretrain",
        "--out",
        str(tmp_path / "out"),
        "--config",
        str(cfg),
        "--corpus",
        str(tmp_path / "corpus.json"),
        "--tokenizer",
        str(tmp_path / "tok"),
    )
    assert proc.returncode == 2, proc.stderr
    assert "impossible model shape" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    for bad_cfg in ("{not json", "[1, 2]"):
        cfg.write_text(bad_cfg)
        proc = _cli("pretrain", "--out", str(tmp_path / "out"), "--config", str(cfg))
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_pretrain_end_to_end(tmp_path, corpus, tokenizer, tiny_recipe):
    (tmp_path / "corpus.json").write_text(json.dumps(corpus))
    (tmp_path / "cfg.json").write_text(json.dumps(tiny_recipe))
    tokenizer.save_pretrained(tmp_path / "tok")
    proc = _cli(
        "pretrain",
        "--out",
        str(tmp_path / "out"),
        "--config",
        str(tmp_path / "cfg.json"),
        "--corpus",
        str(tmp_path / "corpus.json"),
        "--tokenizer",
        str(tmp_path / "tok"),
        "--members",
        "tiny-1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    fam = json.loads(proc.stdout)
    assert [m["name"] for m in fam["members"]] == ["tiny-1"]
    proc = _cli("models", "list", "--json", env={"FTSCALE_MODEL_PATH": str(tmp_path / "out")})
    listed = json.loads(proc.stdout)["models"]
    assert [m["name"] for m in listed if m["family"] == "tiny"] == ["tiny-1"]
