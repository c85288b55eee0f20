"""A tiny learnable task and a randomly initialised Llama, for tests and benchmarks.

Nothing here is used by a real study. The engine only needs the Task interface of
``ftscale.data`` (``split``, ``subset``, ``prompt``, ``metric``, ``data_hash``) and any Hugging Face
causal LM with its tokenizer; these stand-ins provide exactly that without the corpora or the
model family, and they are quick to build (well under a second).

The task is a word-for-word "translation" from an invented vocabulary into German-looking words,
so that a few dozen steps of finetuning visibly reduce the target loss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ftscale.errors import UserError


@dataclass(frozen=True)
class Example:
    """One finetuning example: ``source`` text, ``target`` text, ``lang`` of the target."""

    source: str
    target: str
    lang: str


_SRC = [
    "ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "vo", "xe",
    "ba", "de", "fo", "gu", "hi", "jo",
]  # fmt: skip
_TGT = [
    "Haus", "Baum", "Wasser", "Licht", "Stadt", "Brot", "Hund", "Katze",
    "Tisch", "Stuhl", "Vogel", "Fisch", "Berg", "Feld", "Weg", "Zug",
]  # fmt: skip


class ToyTask:
    """In-memory translation task with the ``ftscale.data.Task`` interface.

    ``n_train``/``n_dev``/``n_test``: examples per split; ``words``: the range of words per
    source sentence (inclusive). Targets map each source word to a fixed
    German word, so the mapping is learnable from a few hundred examples.
    """

    kind = "translate"
    languages = ("xx", "de")
    metric = ("bleu", "chrf")

    def __init__(
        self,
        name: str = "toy-xx-de",
        n_train: int = 400,
        n_dev: int = 64,
        n_test: int = 64,
        words: tuple[int, int] = (2, 6),
    ):
        import numpy as np

        self.name = name
        rng = np.random.default_rng(1234)
        splits = {"train": n_train, "dev": n_dev, "test": n_test}
        self._splits: dict[str, list[Example]] = {}
        for split, n in splits.items():
            rows = []
            for _ in range(n):
                k = int(rng.integers(words[0], words[1] + 1))
                idx = rng.integers(0, len(_SRC), size=k)
                rows.append(
                    Example(" ".join(_SRC[i] for i in idx), " ".join(_TGT[i] for i in idx), "de")
                )
            self._splits[split] = rows

    def split(self, name: str) -> list[Example]:
        """Examples of split ``name`` ("train" | "dev" | "test"), in a fixed order."""
        if name not in self._splits:
            raise UserError(f"unknown split {name!r}")
        return list(self._splits[name])

    def subset(self, data_size: int, seed: int) -> list[Example]:
        """``data_size`` training examples chosen by ``seed`` (nested across sizes)."""
        import numpy as np

        train = self._splits["train"]
        if data_size > len(train):
            raise UserError(
                f"data size {data_size} exceeds the {len(train)} training examples of {self.name}"
            )
        order = np.random.default_rng(seed).permutation(len(train))
        return [train[i] for i in order[:data_size]]

    def prompt(self, example: Example) -> str:
        """Text before the target: instruction and source."""
        return f"Translate to German: {example.source}\nGerman:"

    def data_hash(self, split: str) -> str:
        h = hashlib.sha256()
        for ex in self.split(split):
            h.update(f"{ex.source}\t{ex.target}\n".encode())
        return h.hexdigest()[:16]


def toy_tokenizer(task: ToyTask | None = None, vocab_size: int = 320):
    """The project's byte-level BPE (``ftscale.data.train_tokenizer``) trained on the toy task's
    text (a fraction of a second)."""
    from ftscale.data import train_tokenizer

    task = task or ToyTask()
    texts = [task.prompt(ex) + " " + ex.target for ex in task.split("train")]
    return train_tokenizer(texts, vocab_size, min_frequency=1)


def toy_model(tokenizer, hidden_size: int = 64, layers: int = 2, seed: int = 0):
    """A randomly initialised ``LlamaForCausalLM`` sized for ``tokenizer`` (float32, eval mode)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden_size // 16),
        num_key_value_heads=max(1, hidden_size // 32),
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(cfg).eval()


def toy_pretrain(model, tokenizer, task: ToyTask, steps: int = 40, lr: float = 3e-3, seed: int = 0):
    """Give the random model a little latent skill: plain causal-LM training on whole
    "prompt + target" texts of the task's last 100 training examples (in place; returns model).

    Without it, PET has nothing to steer (a random model's output is uniform over the vocabulary),
    just as the paper's PET relies on the pretrained model's existing ability.
    """
    import torch

    torch.manual_seed(seed)
    texts = [task.prompt(ex) + " " + ex.target for ex in task.split("train")[-100:]]
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        rows = torch.randint(0, len(texts), (16,))
        out = model(input_ids=enc["input_ids"][rows], labels=labels[rows])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model.eval()
