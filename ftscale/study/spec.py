"""Study files: a TOML description of a finetuning scaling sweep, validated before anything runs.

A study scales finetuning data size jointly with ONE other factor, as the paper does:

```toml
[study]
name = "demo"
tasks = ["translate-en-de"]
factor = "model_size"              # model_size | pretrain_tokens | pet_size
models = ["ftlm-1", "ftlm-2"]      # model_size: family members; pretrain_tokens: checkpoints of
                                   # one model; pet_size: exactly one model
methods = ["fmt", "lora", "prompt"]
seeds = 3                          # n -> seeds 0..n-1, or an explicit list

[data_sizes]                       # finetuning examples, per method (PET and FMT ranges differ)
fmt = [800, 1600, 3200, 6400]
lora = [200, 400, 800, 1600]
prompt = [200, 400, 800, 1600]

[pet_sizes]                        # pet_size factor: LoRA ranks / prompt lengths;
lora = [4, 8, 16]                  # otherwise each method's study_pet_size (rank 4, length 20)
prompt = [10, 20, 50]

[training]                         # finetuning settings for every run ...
steps = 150
batch_size = 16
[training.lora]                    # ... and per-method overrides
lr = 1e-3

[fit]
laws = ["multiplicative", "additive"]
holdout_largest = ["model_size", "data_size"]   # held out per (task, method) to report Delta_h
holdout = ""                                    # optional extra expression
space = "linear"
bootstrap = 100
```

Every key is checked: an unknown key, a wrong type or a contradiction (a PET-size study with FMT,
a method without data sizes, ...) raises :class:`UserError` naming the key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftscale.errors import UserError

FACTORS = ("model_size", "pretrain_tokens", "pet_size")

#: More seeds than this per point is a typo, not a study.
MAX_SEEDS = 1000
_STUDY_KEYS = {"name", "tasks", "task", "factor", "models", "methods", "seeds", "description"}
_FIT_KEYS = {"laws", "holdout_largest", "holdout", "space", "bootstrap", "huber_delta", "seed"}
_TRANSFER_KEYS = {"enabled", "shots", "data_sizes", "sample", "decode"}
#: Run-identity fields of the finetuning config that the study itself sets.
_PLANNED_FIELDS = {"model", "task", "task_source", "method", "data_size", "seed", "extra"}


def pet_methods() -> tuple[str, ...]:
    """Methods with a PET size (the registry's; a pet_size study scales those only)."""
    from ftscale.finetune.methods import pet_methods as registry_pet_methods

    return registry_pet_methods()


def study_pet_size(method: str) -> int | None:
    """The PET size of ``method``'s runs when PET size is not the factor scaled (the
    method's ``study_pet_size``, else its default; None without a PET size)."""
    from ftscale.finetune.methods import METHODS

    return METHODS[method].pet_size(None, study=True)


def training_keys() -> set[str]:
    """Settings a study may pass to the finetuning engine: the fields of
    :class:`ftscale.finetune.config.FinetuneConfig` that the plan does not set itself."""
    import dataclasses

    from ftscale.finetune.config import FinetuneConfig
    from ftscale.finetune.methods import pet_size_fields

    return (
        {f.name for f in dataclasses.fields(FinetuneConfig)}
        - _PLANNED_FIELDS
        - set(pet_size_fields())
    )


_TOP_KEYS = {"study", "tasks", "data_sizes", "pet_sizes", "training", "fit", "transfer"}


@dataclass(frozen=True)
class FitSpec:
    laws: tuple[str, ...] = ("auto",)  # "auto": every two-factor law, chosen by held-out error
    holdout_largest: tuple[str, ...] = ("model_size", "data_size")
    holdout: str = ""
    space: str = "linear"
    bootstrap: int = 100
    huber_delta: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class TransferSpec:
    """Zero-/few-shot transfer evaluation of finetuned models (the report issue)."""

    enabled: bool = False
    shots: tuple[int, ...] = (0, 1, 5)
    data_sizes: str = "one"  # "one": one data size per method (the middle one), first seed; "all"
    sample: int = 16  # items per related task scored for the loss
    decode: int = 8  # of those, items decoded for BLEU/chrF

    def training_for(self, study: Study, method: str, data_size: int, seed: int) -> dict[str, Any]:
        """Finetuning settings that turn transfer evaluation on for this run (or none)."""
        if not self.enabled:
            return {}
        sizes = study.data_sizes[method]
        if self.data_sizes == "one" and (
            data_size != sizes[len(sizes) // 2] or seed != study.seeds[0]
        ):
            return {}
        return {
            "transfer": True,
            "transfer_shots": list(self.shots),
            "transfer_examples": self.sample,
            "transfer_decode": self.decode,
        }


@dataclass(frozen=True)
class Study:
    """A validated study file."""

    name: str
    path: Path | None
    tasks: tuple[str, ...]
    factor: str
    models: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    data_sizes: dict[str, tuple[int, ...]]
    pet_sizes: dict[str, tuple[int, ...]]
    training: dict[str, Any]
    training_by_method: dict[str, dict[str, Any]]
    fit: FitSpec = field(default_factory=FitSpec)
    transfer: TransferSpec = field(default_factory=TransferSpec)
    description: str = ""
    #: User tasks: name -> task source (``ftscale.data.user.TaskSource.to_dict``; paths
    #: absolute); embedded tasks are not in it.
    task_sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def training_for(self, method: str) -> dict[str, Any]:
        """Finetuning settings of ``method``: the common table with its overrides applied."""
        return {**self.training, **self.training_by_method.get(method, {})}


def known_methods() -> tuple[str, ...]:
    """Names in the finetuning engine's method registry."""
    from ftscale.finetune.methods import METHODS

    return tuple(METHODS)


def _err(path: Path | None, msg: str) -> UserError:
    return UserError(msg, path=None if path is None else str(path))


def _positive_ints(value: Any, key: str, path: Path | None) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise _err(path, f"{key}: expected a non-empty list of positive integers")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0 or int(v) != v:
            raise _err(path, f"{key}: {v!r} is not a positive integer")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise _err(path, f"{key}: repeated values {out}")
    return tuple(sorted(out))


def _str_list(value: Any, key: str, path: Path | None) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _err(path, f"{key}: expected a non-empty list of strings")
    if len(set(value)) != len(value):
        raise _err(path, f"{key}: repeated values {value}")
    return tuple(value)


def _check_keys(table: dict, allowed: set[str], where: str, path: Path | None) -> None:
    for key in table:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise _err(path, f"unknown key '{where}{key}' (allowed: {hint})")


def _check_training(table: dict, where: str, path: Path | None) -> dict[str, Any]:
    _check_keys(table, training_keys(), where, path)
    return dict(table)


def _check_run_config(study: Study, path: Path | None) -> None:
    """Build one finetuning config per method and let the engine validate it, so a bad setting
    is rejected before anything runs."""
    import dataclasses

    from ftscale.finetune.config import FinetuneConfig, validate
    from ftscale.finetune.methods import METHODS

    types = {f.name: f.type for f in dataclasses.fields(FinetuneConfig)}
    for method in study.methods:
        settings = study.training_for(method)
        for key, value in settings.items():
            want = str(types[key])
            # a rate, a list of rates or "auto"; a list (report_to): the engine's check says
            if key == "lr" or want.startswith("list["):
                continue
            if "str" in want:
                ok = isinstance(value, str)
            elif want == "bool":
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            if not ok:
                own = study.training_by_method.get(method, {})
                where = f"training.{method}.{key}" if key in own else f"training.{key}"
                raise _err(path, f"{where}: {value!r} has the wrong type (expected {want})")
        pet = study.pet_sizes.get(method, (None,))[0]
        field = METHODS[method].pet_size_field
        extra = {field: pet} if field and pet is not None else {}
        try:
            validate(
                FinetuneConfig(
                    model=study.models[0],
                    task=study.tasks[0],
                    task_source=study.task_sources.get(study.tasks[0]),
                    method=method,
                    data_size=min(study.data_sizes[method]),
                    **extra,
                    **settings,
                )
            )
        except UserError as exc:
            raise _err(path, f"training ({method}): {exc}") from None


def parse_study(data: dict[str, Any], path: Path | None = None) -> Study:
    """Validate a parsed study (a TOML document as a dict) and return a :class:`Study`."""
    from ftscale.laws.registry import LAWS

    _check_keys(data, _TOP_KEYS, "", path)
    if "study" not in data or not isinstance(data["study"], dict):
        raise _err(path, "missing [study] table")
    s = data["study"]
    _check_keys(s, _STUDY_KEYS, "study.", path)
    if "task" in s and "tasks" in s:
        raise _err(path, "study.task and study.tasks both given: use one")
    tables = data.get("tasks", {})
    if not isinstance(tables, dict) or not all(isinstance(v, dict) for v in tables.values()):
        raise _err(path, "tasks: expected [tasks.NAME] tables (path, format, fields, ...)")
    given = s.get("tasks", s.get("task"))
    tasks = _str_list(list(tables) if given is None and tables else given, "study.tasks", path)
    tasks, task_sources = _task_sources(tasks, tables, path)
    methods = _str_list(s.get("methods"), "study.methods", path)
    known = known_methods()
    for m in methods:
        if m not in known:
            raise _err(path, f"study.methods: unknown method '{m}' (known: {', '.join(known)})")
    factor = s.get("factor")
    if factor not in FACTORS:
        raise _err(path, f"study.factor: expected one of {', '.join(FACTORS)}, got {factor!r}")
    models = _str_list(s.get("models"), "study.models", path)
    seeds_raw = s.get("seeds", 3)
    if isinstance(seeds_raw, int) and not isinstance(seeds_raw, bool):
        if not 1 <= seeds_raw <= MAX_SEEDS:
            raise _err(path, f"study.seeds: a count must lie in [1, {MAX_SEEDS}]")
        seeds = tuple(range(seeds_raw))
    elif (
        isinstance(seeds_raw, list)
        and seeds_raw
        and len(seeds_raw) <= MAX_SEEDS
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in seeds_raw
        )
    ):
        if len(set(seeds_raw)) != len(seeds_raw):
            raise _err(path, "study.seeds: repeated seeds")
        seeds = tuple(seeds_raw)
    else:
        raise _err(
            path,
            f"study.seeds: expected a count or a list of at most {MAX_SEEDS} integers in [0, 2^32)",
        )

    # Factor-specific contradictions.
    if factor == "model_size" and len(models) < 2:
        raise _err(path, "study.models: a model_size study needs at least 2 models")
    if factor == "pretrain_tokens" and len(models) < 2:
        raise _err(path, "study.models: a pretrain_tokens study needs at least 2 checkpoints")
    if factor == "pet_size":
        if len(models) != 1:
            raise _err(path, "study.models: a pet_size study scales one model (give exactly one)")
        pet = pet_methods()
        if any(m not in pet for m in methods):
            raise _err(
                path,
                f"study.methods: a pet_size study takes PET methods only ({', '.join(pet)})",
            )

    ds = data.get("data_sizes")
    if not isinstance(ds, dict) or not ds:
        raise _err(path, "missing [data_sizes] table (one list of finetuning sizes per method)")
    data_sizes = {}
    for key, value in ds.items():
        if key not in methods:
            raise _err(path, f"data_sizes.{key}: '{key}' is not one of study.methods")
        data_sizes[key] = _positive_ints(value, f"data_sizes.{key}", path)
    for m in methods:
        if m not in data_sizes:
            raise _err(path, f"data_sizes.{m}: missing (every method needs its data sizes)")

    ps = data.get("pet_sizes", {})
    if not isinstance(ps, dict):
        raise _err(path, "pet_sizes: expected a table")
    pet_sizes: dict[str, tuple[int, ...]] = {}
    for key, value in ps.items():
        if key not in pet_methods() or key not in methods:
            raise _err(path, f"pet_sizes.{key}: only for the PET methods of study.methods")
        sizes = _positive_ints(
            value if isinstance(value, list) else [value], f"pet_sizes.{key}", path
        )
        if factor != "pet_size" and len(sizes) != 1:
            raise _err(path, f'pet_sizes.{key}: several sizes need factor = "pet_size"')
        pet_sizes[key] = sizes
    for m in methods:
        if m in pet_methods() and m not in pet_sizes:
            if factor == "pet_size":
                raise _err(path, f"pet_sizes.{m}: a pet_size study needs the sizes of every method")
            pet_sizes[m] = (study_pet_size(m),)
        if factor == "pet_size" and len(pet_sizes[m]) < 2:
            raise _err(path, f"pet_sizes.{m}: a pet_size study needs at least 2 sizes")

    tr = data.get("training", {})
    if not isinstance(tr, dict):
        raise _err(path, "training: expected a table")
    common = {k: v for k, v in tr.items() if not isinstance(v, dict)}
    training = _check_training(common, "training.", path)
    by_method = {}
    for key, value in tr.items():
        if isinstance(value, dict):
            if key not in methods:
                raise _err(path, f"training.{key}: '{key}' is not one of study.methods")
            by_method[key] = _check_training(value, f"training.{key}.", path)

    f = data.get("fit", {})
    if not isinstance(f, dict):
        raise _err(path, "fit: expected a table")
    _check_keys(f, _FIT_KEYS, "fit.", path)
    laws = _str_list(f.get("laws", list(FitSpec.laws)), "fit.laws", path)
    for law in laws:
        if law not in LAWS and law != "auto":  # the law registry (numpy/scipy only)
            raise _err(path, f"fit.laws: unknown law '{law}' (known: {', '.join(LAWS)})")
    hl = f.get("holdout_largest", list(FitSpec.holdout_largest))
    if not isinstance(hl, list) or not all(
        v in ("model_size", "pretrain_tokens", "pet_size", "data_size") for v in hl
    ):
        raise _err(path, "fit.holdout_largest: expected a list of factor columns")
    space = f.get("space", "linear")
    if space not in ("linear", "log"):
        raise _err(path, f"fit.space: expected linear or log, got {space!r}")
    bootstrap = f.get("bootstrap", FitSpec.bootstrap)
    if not isinstance(bootstrap, int) or isinstance(bootstrap, bool) or bootstrap < 0:
        raise _err(path, "fit.bootstrap: expected a non-negative integer")
    holdout = f.get("holdout", "")
    if not isinstance(holdout, str):
        raise _err(path, "fit.holdout: expected an expression string")
    huber = f.get("huber_delta", 1e-3)
    if not isinstance(huber, int | float) or isinstance(huber, bool) or huber <= 0:
        raise _err(path, "fit.huber_delta: expected a positive number")
    fit_seed = f.get("seed", 0)
    if isinstance(fit_seed, bool) or not isinstance(fit_seed, int) or not 0 <= fit_seed < 2**32:
        raise _err(path, f"fit.seed: expected an integer in [0, 2^32), got {fit_seed!r}")
    fit = FitSpec(
        laws=laws,
        holdout_largest=tuple(hl),
        holdout=holdout,
        space=space,
        bootstrap=bootstrap,
        huber_delta=float(huber),
        seed=fit_seed,
    )

    t = data.get("transfer", {})
    if not isinstance(t, dict):
        raise _err(path, "transfer: expected a table")
    _check_keys(t, _TRANSFER_KEYS, "transfer.", path)
    enabled = t.get("enabled", False)
    if not isinstance(enabled, bool):
        raise _err(path, f"transfer.enabled: expected true or false, got {enabled!r}")
    shots = t.get("shots", [0, 1, 5])
    if not (
        isinstance(shots, list)
        and shots
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 64 for v in shots)
    ):
        raise _err(path, f"transfer.shots: expected a list of integers in [0, 64], got {shots!r}")
    counts = {}
    for key, default, low in (("sample", 16, 1), ("decode", 8, 0)):
        v = t.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise _err(path, f"transfer.{key}: expected an integer >= {low}, got {v!r}")
        counts[key] = v
    if counts["decode"] > counts["sample"]:
        raise _err(path, "transfer.decode: cannot exceed transfer.sample")
    data_sizes_t = t.get("data_sizes", "one")
    transfer = TransferSpec(
        enabled=enabled,
        shots=tuple(shots),
        data_sizes=data_sizes_t if isinstance(data_sizes_t, str) else repr(data_sizes_t),
        sample=counts["sample"],
        decode=counts["decode"],
    )
    if transfer.data_sizes not in ("one", "all"):
        raise _err(path, "transfer.data_sizes: expected 'one' or 'all'")

    name = s.get("name") or (path.stem if path is not None else "study")
    if not isinstance(name, str):
        raise _err(path, "study.name: expected a string")
    study = Study(
        name=name,
        path=path,
        tasks=tasks,
        factor=factor,
        models=models,
        methods=methods,
        seeds=seeds,
        data_sizes=data_sizes,
        pet_sizes=pet_sizes,
        training=training,
        training_by_method=by_method,
        fit=fit,
        transfer=transfer,
        description=str(s.get("description", "")),
        task_sources=task_sources,
    )
    _check_run_config(study, path)
    return study


def _task_sources(
    tasks: tuple[str, ...], tables: dict[str, dict], path: Path | None
) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """Task names and the sources of user tasks: ``[tasks.NAME]`` tables, and bare data paths
    in ``study.tasks`` (named after the file). Relative paths are from the study file."""
    from ftscale.data.user import looks_like_data, make_source, task_ref

    base = path.parent.resolve() if path is not None else None
    unused = [n for n in tables if n not in tasks]
    if unused:
        raise _err(path, f"tasks.{unused[0]}: defined but not in study.tasks")
    names, sources = [], {}
    for ref in tasks:
        try:
            if ref in tables:
                src = make_source(tables[ref], name=ref, base=base)
                name, source = src.task_name, src.to_dict()
            elif looks_like_data(ref, base):
                name, source = task_ref(ref, base=base)
            else:  # a task name: ftscale.study.check says whether it exists
                name, source = ref, None
        except UserError as exc:
            where = f"tasks.{ref}" if ref in tables else "study.tasks"
            raise _err(path, f"{where}: {exc}") from None
        if name in names:
            raise _err(
                path, f"study.tasks: two tasks are named {name!r}; name them in [tasks.NAME]"
            )
        names.append(name)
        if source is not None:
            sources[name] = source
    return tuple(names), sources


def load_study(path: str | Path) -> Study:
    """Read and validate a study file (TOML)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("study file not found", path=str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML ({exc})", path=str(path)) from None
    except UnicodeDecodeError:
        raise UserError("not a UTF-8 text file", path=str(path)) from None
    return parse_study(data, path)
