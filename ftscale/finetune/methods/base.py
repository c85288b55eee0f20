"""What a finetuning method is: everything the rest of the project knows about it.

A method's file declares, as class attributes of one :class:`Method` subclass, its registry
name, its report label and colour, its default learning rate, its PET size if it has one
(:class:`PetSize`: the run-config field that holds it, what it means, its default for a single
run and for a study that does not scale it), and its cost model (FLOPs per training token, fp32 copies of
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


@dataclass(frozen=True)
class PetSize:
    """A method's PET size: the run-config ``field`` that holds it (an optional positive integer,
    with a ``--flag`` of the same name), what it ``means`` (for ``--help``), its ``default`` for
    a single run, and ``study_default`` for a study that does not scale it (None: ``default``)."""

    field: str
    means: str
    default: int
    study_default: int | None = None


def peft_adapted(model: Any, peft_config: Any) -> Adapted:
    """``model`` with PEFT's adapters of ``peft_config`` injected in place; the parameters PEFT
    leaves trainable are the method's."""
    import warnings

    from peft import get_peft_model

    with warnings.catch_warnings():
        # PEFT calls a transformers method that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        peft_model = get_peft_model(model, peft_config)
    base = peft_model.get_base_model()  # the same object, adapters injected in place
    trainable = [p for p in base.parameters() if p.requires_grad]
    return Adapted(base, None, trainable, sum(p.numel() for p in trainable))


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
    #: centre of the learning-rate search for a model ftscale did not pretrain (a real
    #: pretrained LLM): the family's rates are far too high there (docs/finetune.md, "Real
    #: models"); None: default_lr / 30
    pretrained_lr: float | None = None
    #: whether the model right after ``apply`` computes exactly the base model's function (LoRA's
    #: zero B, IA3's unit vectors, FMT): then its step-0 dev loss is the base model's, computed
    #: once per model and dev set (ftscale.finetune.basecache)
    starts_as_base: bool = False
    #: the method's PET size (LoRA rank, prompt length), None for a method without one
    pet: PetSize | None = None
    #: fp32 copies of the base weights held while training (weights, and when every weight
    #: trains also gradients and two AdamW moments): the memory guard before a model is loaded
    weight_copies: int = 1

    @property
    def has_pet_size(self) -> bool:
        return self.pet is not None

    @property
    def pet_size_field(self) -> str | None:
        """Run-config field holding the PET size ("rank", "prompt_length"), or None."""
        return None if self.pet is None else self.pet.field

    @property
    def pet_size_help(self) -> str:
        return "" if self.pet is None else self.pet.means

    @property
    def default_pet_size(self) -> int | None:
        return None if self.pet is None else self.pet.default

    @property
    def study_pet_size(self) -> int | None:
        return None if self.pet is None else self.pet.study_default

    def pet_size(self, given: int | None, *, study: bool = False) -> int | None:
        """The PET size a run uses: ``given``, else the single-run or study default."""
        if not self.has_pet_size:
            return None
        if given is not None:
            return int(given)
        if study and self.study_pet_size is not None:
            return self.study_pet_size
        return self.default_pet_size

    def check_pet_size(self, model_config: Any, pet_size: int | None, max_length: int) -> None:
        """UserError if ``pet_size`` cannot fit the model (``model_config``: its Hugging Face
        config; ``max_length``: tokens per example). Checked once the model's config is known,
        before any adapter is built; the base class accepts every size."""

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
