"""GGUF files converted once into a cached safetensors folder (ftscale.models.gguf).

The cache logic runs on a fake GGUF (a few bytes) whose "conversion" is a toy model, so these
tests take a second; the real conversion of SmolLM2 is checked in test_real_checkpoint.py.
"""

from __future__ import annotations

import os

import pytest

from ftscale.errors import UserError
from ftscale.models import gguf as gguf_mod
from ftscale.models import load_model, model_info, registry


@pytest.fixture()
def fake_gguf(tmp_path, monkeypatch):
    """A ``.gguf`` file whose conversion yields a toy model carrying a fake quantizer; counts
    the conversions."""
    from ftscale.testing.toy import toy_model, toy_tokenizer

    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path / "cache"))
    tok = toy_tokenizer()
    calls = []

    class Quantizer:
        def remove_quantization_config(self, model):
            del model.hf_quantizer
            del model.config.quantization_config
            model.is_quantized = False

    def fake_load(folder, fname):
        calls.append(fname)
        m = toy_model(tok)
        m.hf_quantizer = Quantizer()
        m.config.quantization_config = {"quant_method": "gguf"}
        m.is_quantized = True
        return gguf_mod.strip_quantizer(m), tok

    monkeypatch.setattr(registry, "_load_from_gguf", fake_load)
    path = tmp_path / "models" / "tiny.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    return path, calls


def test_converted_once_then_read_from_the_cache(fake_gguf):
    path, calls = fake_gguf
    model, tok, info = load_model(str(path))
    assert calls == ["tiny.gguf"]
    folder = gguf_mod.cached_folder(path)
    assert folder is not None and folder.parent.parent == gguf_mod.cache_dir()
    assert info.path == str(path) and info.details["converted"] == str(folder)
    # a plain model: nothing for another library to take for a quantized one
    assert getattr(model, "hf_quantizer", None) is None
    assert not getattr(model, "is_quantized", False)
    assert "quantization_config" not in (folder / "config.json").read_text()
    again, _, _ = load_model(str(path))
    assert calls == ["tiny.gguf"]  # the second load read the folder
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert (a == b).all()
    # model_info reads the converted config.json, and agrees with the loaded model
    assert model_info(str(path)).model_size == info.model_size
    # no temporary folders left beside it
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_a_moved_file_reuses_the_folder_and_a_changed_file_converts_again(fake_gguf, tmp_path):
    path, calls = fake_gguf
    load_model(str(path))
    moved = tmp_path / "elsewhere" / "tiny.gguf"
    moved.parent.mkdir()
    os.replace(path, moved)
    load_model(str(moved))
    assert len(calls) == 1
    moved.write_bytes(moved.read_bytes() + b"changed")
    assert gguf_mod.cached_folder(moved) is None
    load_model(str(moved))
    assert len(calls) == 2


def test_an_interrupted_conversion_leaves_nothing_that_looks_complete(fake_gguf, monkeypatch):
    path, calls = fake_gguf

    def boom(*a, **k):
        raise KeyboardInterrupt

    from transformers import PreTrainedTokenizerBase

    monkeypatch.setattr(PreTrainedTokenizerBase, "save_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        load_model(str(path))
    assert gguf_mod.cached_folder(path) is None
    root = gguf_mod.converted_dir(path).parent
    assert not any(root.iterdir())


def test_packed_weights_are_refused():
    import torch

    class Packed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(4, dtype=torch.uint8), requires_grad=False)

    with pytest.raises(UserError, match="packed"):
        gguf_mod.strip_quantizer(Packed())


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path / "a"))
    assert gguf_mod.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("FTSCALE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert gguf_mod.cache_dir() == tmp_path / "x" / "ftscale"
