"""Finetuning methods registry: one file per method, one name per method in ``_NAMES``.

Adding a method: a file ``<name>.py`` in this folder defining one :class:`Method` subclass
whose ``name`` is ``<name>``, and the name in ``_NAMES``. Nothing else changes: the run config's
PET-size field and its ``--flag``, study files, the engine's cost model and the report's label
and colour all come from the method (docs/ARCHITECTURE.md, "How to add a method").
Importing this package does not import torch.
"""

from __future__ import annotations

import importlib

from ftscale.finetune.methods.base import Adapted, Method, PetSize

#: The registry, in report order.
_NAMES = ("fmt", "lora", "prompt", "ia3")


def _load(name: str) -> Method:
    module = importlib.import_module(f"{__name__}.{name}")
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Method) and obj.name == name
    ]
    if len(found) != 1:
        raise ImportError(f"{module.__name__} must define one Method subclass named {name!r}")
    return found[0]()


#: name -> method.
METHODS: dict[str, Method] = {name: _load(name) for name in _NAMES}


def pet_size_fields() -> dict[str, str]:
    """Run-config fields that hold a PET size -> what they mean (e.g. ``rank`` -> "LoRA rank"),
    in registry order; methods that share a field (two LoRA variants) share its meaning."""
    out: dict[str, str] = {}
    for m in METHODS.values():
        if m.pet_size_field is not None:
            out.setdefault(m.pet_size_field, m.pet_size_help or m.pet_size_field)
    return out


def pet_methods() -> tuple[str, ...]:
    """Names of the methods with a PET size (those a ``pet_size`` study can scale)."""
    return tuple(n for n, m in METHODS.items() if m.has_pet_size)


__all__ = ["METHODS", "Adapted", "Method", "PetSize", "pet_methods", "pet_size_fields"]
