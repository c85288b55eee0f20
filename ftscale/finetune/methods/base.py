"""What a finetuning method is: everything the rest of the project knows about it.

A method's file declares, as class attributes of one :class:`Method` subclass, its registry
name, its report label and colour, its default learning rate, whether it has a PET size and
what that size means (the run-config field that holds it, its default for a single run and for
a study that does not scale it), and its cost model (FLOPs per training token, fp32 copies of
the base weights it holds while training); ``apply`` prepares a base model. The config fields,
CLI flags, study files, engine and report all read these from :data:`ftscale.finetune.methods.METHODS`,
so a new method is one file here plus one line in the registry.

``apply`` takes the base model and returns an :class:`Adapted`: the model whose forward the loop
calls (adapters injected in place, like PEFT does), an optional soft prefix of input embeddings,
the list of parameters the optimiser updates, and the count of parameters the method adds.
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

    #: registry name, as on the command line and in the results table
    name: str = ""
    #: name in reports and figures
    label: str = ""
    #: colour in every figure (None: one picked from the name)
    colour: str | None = None
    #: learning rate used when the run does not give one (measured: docs/finetune.md)
    default_lr: float = 1e-3
    #: run-config field holding the PET size ("rank", "prompt_length"), None without a PET size;
    #: the field (an optional positive integer) and its ``--flag`` exist because a method names it
    pet_size_field: str | None = None
    #: what the PET size is, for the field's ``--help`` and docs ("LoRA rank")
    pet_size_help: str = ""
    #: PET size of a single run that does not give one
    default_pet_size: int | None = None
    #: PET size of a study run when PET size is not the factor scaled (None: default_pet_size)
    study_pet_size: int | None = None
    #: fp32 copies of the base weights held while training (weights, and when every weight
    #: trains also gradients and two AdamW moments): the memory guard before a model is loaded
    weight_copies: int = 1

    @property
    def has_pet_size(self) -> bool:
        return self.pet_size_field is not None

    def pet_size(self, given: int | None, *, study: bool = False) -> int | None:
        """The PET size a run uses: ``given``, else the single-run or study default."""
        if not self.has_pet_size:
            return None
        if given is not None:
            return int(given)
        if study and self.study_pet_size is not None:
            return self.study_pet_size
        return self.default_pet_size

    def flops_per_token(self, model_size: int, trainable: int) -> float:
        """Training FLOPs per token: forward 2 N, backward of the activations 2 N, and the
        weight gradients 2 per trainable parameter (6 N when every weight trains)."""
        return 4 * model_size + 6 * trainable

    def apply(
        self, model: Any, tokenizer: Any, pet_size: int | None, generator: torch.Generator
    ) -> Adapted:
        """Prepare ``model`` (modified in place) for training with this method.

        ``tokenizer``: the model's tokenizer. ``pet_size``: the method's PET size (None without
        one). ``generator``: the run's seeded RNG for any random initialisation.
        """
        raise NotImplementedError
