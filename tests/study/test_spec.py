import copy
from pathlib import Path

import pytest

from ftscale.errors import UserError
from ftscale.study.plan import plan_study
from ftscale.study.spec import load_study, parse_study
from ftscale.testing.simulated import simulated_study


def _with(mutate):
    d = copy.deepcopy(simulated_study())
    mutate(d)
    return d


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d["study"].update(colour="red"), "study.colour"),
        (lambda d: d.update(extra={}), "extra"),
        (lambda d: d["study"].update(factor="width"), "study.factor"),
        (lambda d: d["study"].update(methods=["fmt", "qlora"]), "study.methods"),
        (lambda d: d["study"].update(models=["sim-1e5", "sim-1e5"]), "study.models"),
        (lambda d: d["study"].update(seeds=0), "study.seeds"),
        (lambda d: d["data_sizes"].update(fmt=[100, -5]), "data_sizes.fmt"),
        (lambda d: d["data_sizes"].pop("lora"), "data_sizes.lora"),
        (lambda d: d["data_sizes"].update(prompt=[10]), "data_sizes.prompt"),
        (lambda d: d["training"].update(stepz=3), "training.stepz"),
        (lambda d: d["training"].update(steps="many"), "training.steps"),
        (lambda d: d["training"].update(lr=5.0), "training (fmt)"),
        (lambda d: d.update(training={"lora": {"batch_size": 0}}), "training (lora)"),
        (lambda d: d.update(fit={"laws": ["cubic"]}), "fit.laws"),
        (lambda d: d.update(fit={"space": "loglog"}), "fit.space"),
        (lambda d: d.update(pet_sizes={"lora": [4, 8]}), "pet_sizes.lora"),
        (
            lambda d: d["study"].update(factor="pet_size", models=["sim-1e5"]),
            "study.methods",
        ),
    ],
)
def test_bad_study_names_the_key(mutate, key):
    with pytest.raises(UserError) as exc:
        parse_study(_with(mutate))
    assert key in str(exc.value)


@pytest.mark.parametrize(
    ("table", "method", "value", "message"),
    [
        ("data_sizes", "fmt", "many", "data_sizes.fmt: must be a list, got 'many'"),
        ("data_sizes", "fmt", [100, "x"], "data_sizes.fmt: must be an integer, got 'x'"),
        ("data_sizes", "fmt", [100, 100], "data_sizes.fmt: repeated values [100, 100]"),
        ("pet_sizes", "lora", 0, "pet_sizes.lora: must be positive, got 0"),
    ],
)
def test_a_bad_size_is_named_by_its_table_and_method(table, method, value, message):
    # one table of sizes is validated at once; no helper field leaks into the key (".v")
    with pytest.raises(UserError) as exc:
        parse_study(_with(lambda d: d.setdefault(table, {}).update({method: value})))
    assert str(exc.value) == message


def test_pet_size_study_plans_every_size():
    d = simulated_study()
    d["study"].update(factor="pet_size", models=["sim-1e6"], methods=["lora"])
    d["data_sizes"] = {"lora": [50, 100]}
    d["pet_sizes"] = {"lora": [2, 4, 8]}
    runs = plan_study(parse_study(d), {"sim-task": "h"})
    assert len(runs) == 3 * 2 * 2
    assert sorted({r.spec["pet_size"] for r in runs}) == [2, 4, 8]


def test_keys_are_stable_and_change_with_config_and_data():
    study = parse_study(simulated_study())
    a = plan_study(study, {"sim-task": "h"})
    b = plan_study(parse_study(simulated_study()), {"sim-task": "h"})
    assert [r.run_key for r in a] == [r.run_key for r in b]
    assert len({r.run_key for r in a}) == len(a)
    c = plan_study(study, {"sim-task": "other-data"})
    assert not {r.run_key for r in a} & {r.run_key for r in c}
    d = simulated_study()
    d["training"]["steps"] = 11
    e = plan_study(parse_study(d), {"sim-task": "h"})
    assert not {r.run_key for r in a} & {r.run_key for r in e}


def test_load_study_file_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_study(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\nname = 1")
    with pytest.raises(UserError, match="not valid TOML"):
        load_study(bad)


def test_keys_change_when_a_models_weights_change(tmp_path):
    import json

    from ftscale.models.checkpoint import META_FILE
    from ftscale.models.registry import model_fingerprint

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / META_FILE).write_text(json.dumps({"weights_sha256": "aa"}))
    d = simulated_study(models=(str(ck), "sim-1e6"))
    a = plan_study(parse_study(d), {"sim-task": "h"})
    assert model_fingerprint(str(ck)) == "sha256:aa"
    (ck / META_FILE).write_text(json.dumps({"weights_sha256": "bb"}))  # rebuilt, same name
    b = plan_study(parse_study(d), {"sim-task": "h"})
    changed = {r.run_key for r in a} - {r.run_key for r in b}
    assert len(changed) == sum(r.spec["model"] == str(ck) for r in a) > 0
    # the other model's runs keep their keys
    assert {r.run_key for r in a if r.spec["model"] == "sim-1e6"} <= {r.run_key for r in b}


@pytest.mark.parametrize(
    "path",
    sorted(str(p) for p in (Path(__file__).parents[2] / "examples").glob("*.toml")),
    ids=lambda p: Path(p).name,
)
def test_every_shipped_example_study_parses(path):
    study = load_study(path)
    assert study.models and study.methods
