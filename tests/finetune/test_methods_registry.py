"""The method registry is the one home of a method: every other stage derives from it."""

from __future__ import annotations

import dataclasses

import pytest

from ftscale.finetune.config import FinetuneConfig
from ftscale.finetune.methods import METHODS, Method, pet_methods, pet_size_fields


@pytest.mark.parametrize("name", list(METHODS))
def test_each_method_declares_what_the_stages_read(name):
    m = METHODS[name]
    assert isinstance(m, Method) and m.name == name
    assert m.label and 0 < m.default_lr <= 1
    assert m.weight_copies >= 1
    assert m.flops_per_token(1000, 10) >= 4 * 1000
    if m.has_pet_size:
        assert m.pet_size_field in {f.name for f in dataclasses.fields(FinetuneConfig)}
        assert m.default_pet_size and m.default_pet_size > 0
        assert name in pet_methods()
    else:
        assert m.pet_size(7) is None and name not in pet_methods()


def test_config_fields_cli_flags_and_study_defaults_come_from_the_registry():
    import argparse

    from ftscale.cli import finetune as cli
    from ftscale.report.figures import method_colour, method_label
    from ftscale.study.spec import study_pet_size, training_keys

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    flags = {a for action in parser._subparsers._group_actions for a in action.choices}
    assert flags == {"finetune"}
    sub = parser._subparsers._group_actions[0].choices["finetune"]
    options = {s for a in sub._actions for s in a.option_strings}
    for field in pet_size_fields():
        assert "--" + field.replace("_", "-") in options
        assert field not in training_keys()  # the planner sets it from pet_sizes
    for name, m in METHODS.items():
        assert method_label(name) == m.label
        assert method_colour(name).startswith("#")
        assert study_pet_size(name) == (m.study_pet_size or m.default_pet_size)
    # the prompt length of a study run is the method's own study default, not a spec constant
    assert study_pet_size("prompt") == METHODS["prompt"].study_pet_size == 20
    assert METHODS["prompt"].pet_size(None) == 100


def test_the_config_declares_one_pet_size_field_per_registered_field():
    """The run config's PET-size fields are written out (type checkers and IDEs see them); they
    must be exactly the fields the registry names, each an optional positive integer."""
    import typing

    hints = typing.get_type_hints(FinetuneConfig)
    declared = {
        f.name
        for f in dataclasses.fields(FinetuneConfig)
        if f.type.startswith("PosInt")
        and f.default is None
        and f.name not in ("min_steps", "max_steps", "threads")
    }
    assert declared == set(pet_size_fields())
    for field in pet_size_fields():
        assert hints[field] == int | None
