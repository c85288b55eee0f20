"""The project's model family: Llama configurations built by one shape rule.

The paper's family (1B..16B) grows depth and width together. Ours does the same at toy scale:

    member k (k = 1..6):  n_layer = k,  d_model = 32 + 16 * k,  head_dim = 16,
                          n_head = d_model / 16,  d_ff = 3 * d_model

so the aspect ratio d_model / n_layer shrinks slowly as the model grows, and non-embedding
parameters (about 13 * n_layer * d_model^2) span ~43x from ftlm-1 to ftlm-6. Embeddings are tied
to the output head: with a 4,096-token vocabulary an untied head would double the file size and
dominate the small members' parameter count.

Pure Python: building a config needs ``transformers`` only inside :func:`llama_config`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ftscale.errors import UserError

#: Name prefix of the family members: ``ftlm-1`` (smallest) .. ``ftlm-6`` (largest).
FAMILY_NAME = "ftlm"
#: Number of members in the default family.
N_MEMBERS = 6
#: Vocabulary of the shared tokenizer, tokens.
VOCAB_SIZE = 4096
#: Longest sequence the models accept, tokens (RoPE, so no parameters depend on it).
MAX_POSITIONS = 512
HEAD_DIM = 16


@dataclass(frozen=True)
class Shape:
    """The free dimensions of one Llama model."""

    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    vocab_size: int = VOCAB_SIZE
    max_positions: int = MAX_POSITIONS

    def validate(self) -> None:
        """Raise :class:`UserError` if the shape cannot be built."""
        for field in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "max_positions"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise UserError(
                    f"impossible model shape: {field} must be a positive integer, got {value!r}"
                )
        if self.d_model % self.n_head:
            raise UserError(
                f"impossible model shape: d_model={self.d_model} is not divisible by n_head={self.n_head}"
            )
        if (self.d_model // self.n_head) % 2:
            # RoPE rotates pairs of channels, so each head needs an even width.
            raise UserError(
                f"impossible model shape: head width d_model/n_head={self.d_model // self.n_head} must be even"
            )

    def params_nonembed(self) -> int:
        """Parameters outside the (tied) token embedding: attention, MLP and RMSNorm weights."""
        d, f = self.d_model, self.d_ff
        per_layer = 4 * d * d + 3 * d * f + 2 * d
        return self.n_layer * per_layer + d  # + final norm

    def params_total(self) -> int:
        """All parameters, as the paper counts model size (tied head counted once)."""
        return self.params_nonembed() + self.vocab_size * self.d_model


def member_shape(k: int, vocab_size: int = VOCAB_SIZE) -> Shape:
    """The shape rule: member ``k`` (1-based) of the family."""
    if k < 1:
        raise UserError(f"family member index must be >= 1, got {k}")
    d = 32 + 16 * k
    return Shape(n_layer=k, d_model=d, n_head=d // HEAD_DIM, d_ff=3 * d, vocab_size=vocab_size)


def member_name(k: int) -> str:
    return f"{FAMILY_NAME}-{k}"


def family_shapes(n: int = N_MEMBERS, vocab_size: int = VOCAB_SIZE) -> dict[str, Shape]:
    """Names and shapes of the family, smallest first."""
    return {member_name(k): member_shape(k, vocab_size) for k in range(1, n + 1)}


def llama_config(shape: Shape, tokenizer: Any = None) -> Any:
    """A ``transformers.LlamaConfig`` for ``shape`` (validated first), with the ids of
    ``tokenizer``'s bos, eos and pad tokens (None: unset)."""
    shape.validate()
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=shape.vocab_size,
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layer,
        num_attention_heads=shape.n_head,
        num_key_value_heads=shape.n_head,
        max_position_embeddings=shape.max_positions,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        **{
            f"{t}_token_id": getattr(tokenizer, f"{t}_token_id", None)
            for t in ("bos", "eos", "pad")
        },
    )


def shape_from_dict(d: dict) -> Shape:
    """Build a :class:`Shape` from a config-file mapping, rejecting unknown keys."""
    allowed = set(Shape.__dataclass_fields__)
    unknown = set(d) - allowed
    if unknown:
        raise UserError(f"unknown model shape keys: {sorted(unknown)} (allowed: {sorted(allowed)})")
    try:
        shape = Shape(**d)
    except TypeError as exc:
        raise UserError(f"incomplete model shape: {exc}") from None
    shape.validate()
    return shape


def shape_to_dict(shape: Shape) -> dict:
    return asdict(shape)
