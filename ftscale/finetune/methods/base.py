"""What a finetuning method is: a name, a default learning rate, and ``apply``.

``apply`` takes the base model and returns an :class:`Adapted`: the model whose forward the loop
calls (adapters injected in place, like PEFT does), an optional soft prefix of input embeddings,
and the list of parameters the optimiser updates. The training loop knows nothing else about the
method, so a new method is one file plus one line in ``methods/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported only where a run needs it
    import torch


@dataclass
class Adapted:
    """A base model prepared for one method.

    ``model``: the Hugging Face causal LM the loop runs (adapter layers injected in place).
    ``prefix``: trainable embeddings prepended to every input, shape [P, hidden], or None.
    ``trainable``: the parameters the optimiser updates.
    ``pet_params``: parameters the method adds to the base model (0 for full tuning).
    """

    model: Any
    prefix: torch.nn.Parameter | None
    trainable: list[torch.nn.Parameter]
    pet_params: int


class Method:
    """Base class of the registry's entries. Subclasses set the class attributes and ``apply``."""

    #: registry name, as on the command line
    name: str = ""
    #: learning rate used when the run does not give one (measured: docs/finetune.md)
    default_lr: float = 1e-3
    #: name of the run-config field holding the PET size ("rank", "prompt_length") or None
    pet_size_field: str | None = None
    #: PET size used when the run does not give one
    default_pet_size: int | None = None

    def apply(
        self, model: Any, tokenizer: Any, pet_size: int | None, generator: torch.Generator
    ) -> Adapted:
        """Prepare ``model`` (modified in place) for training with this method.

        ``tokenizer``: the model's tokenizer. ``pet_size``: LoRA rank or prompt length (None for full tuning). ``generator``: the run's
        seeded RNG for any random initialisation.
        """
        raise NotImplementedError
