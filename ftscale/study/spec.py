"""Study files: a TOML description of a finetuning scaling sweep, validated before anything runs.

A study scales finetuning data size jointly with ONE other factor (``model_size``,
``pretrain_tokens`` or ``pet_size``), as the paper does; the file format is in docs/study.md and
examples/. The tables are pydantic models (strict types, no unknown keys, bounds); an unknown
key, a wrong type or a contradiction (a PET-size study with FMT, a method without data sizes,
...) raises :class:`UserError` naming the key (``study.factor: ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, Strict

from ftscale.data.user import task_refs
from ftscale.errors import UserError, validated
from ftscale.finetune.config import TRANSFER_SHOTS, FinetuneConfig, validate
from ftscale.finetune.methods import METHODS, pet_methods, pet_size_fields
from ftscale.fsutil import read_user_toml

Factor = Literal["model_size", "pretrain_tokens", "pet_size"]
#: More seeds than this per point is a typo, not a study.
MAX_SEEDS = 1000
#: Run-identity fields of the finetuning config that the study itself sets.
_PLANNED_FIELDS = {"model", "task", "task_source", "method", "data_size", "seed", "extra"}
_Seed = Annotated[int, Strict(), Field(ge=0, lt=2**32)]
_Names = Annotated[list[Annotated[str, Strict(), Field(min_length=1)]], Field(min_length=1)]
_Sizes = Annotated[list[Annotated[int, Strict(), Field(gt=0)]], Field(min_length=1)]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def study_pet_size(method: str) -> int | None:
    """The PET size of ``method``'s runs when PET size is not the factor scaled (the
    method's ``study_pet_size``, else its default; None without a PET size)."""
    return METHODS[method].pet_size(None, study=True)


def training_keys() -> set[str]:
    """Settings a study may pass to the finetuning engine: the fields of
    :class:`ftscale.finetune.config.FinetuneConfig` that the plan does not set itself."""
    return {f.name for f in fields(FinetuneConfig)} - _PLANNED_FIELDS - set(pet_size_fields())


def _known_law(law: str) -> str:
    from ftscale.laws.registry import LAWS  # the law registry (numpy/scipy only)

    if law not in LAWS and law != "auto":
        raise ValueError(f"unknown law '{law}' (known: {', '.join(LAWS)})")
    return law


class FitSpec(_Table):
    """``[fit]``: the laws fitted and how they are scored (``ftscale.analysis.study``)."""

    laws: tuple[Annotated[str, Strict(), AfterValidator(_known_law)], ...] = Field(
        ("auto",), min_length=1
    )  # "auto": every law
    holdout_largest: tuple[Factor | Literal["data_size"], ...] = ("model_size", "data_size")
    holdout: Annotated[str, Strict()] = ""  # an extra hold-out expression
    space: Literal["linear", "log"] = "linear"
    bootstrap: Annotated[int, Strict(), Field(ge=0)] = 100
    huber_delta: Annotated[float, Strict(), Field(gt=0)] = 1e-3
    seed: _Seed = 0


class TransferSpec(_Table):
    """``[transfer]``: zero-/few-shot transfer evaluation of finetuned models."""

    enabled: Annotated[bool, Strict()] = False
    shots: tuple[Annotated[int, Strict(), Field(ge=0, le=64)], ...] = Field(
        TRANSFER_SHOTS, min_length=1
    )
    data_sizes: Literal["one", "all"] = "one"  # one: the middle size of each method, first seed
    sample: Annotated[int, Strict(), Field(ge=1)] = 16  # items per related task (the loss)
    decode: Annotated[int, Strict(), Field(ge=0)] = 8  # of those, items decoded for BLEU/chrF


class _StudyTable(_Table):
    name: Annotated[str, Strict()] | None = None
    tasks: _Names | Annotated[str, Strict()] | None = None
    task: _Names | Annotated[str, Strict()] | None = None
    factor: Factor
    models: _Names | Annotated[str, Strict()]
    methods: _Names | Annotated[str, Strict()]
    seeds: (
        Annotated[int, Strict(), Field(ge=1, le=MAX_SEEDS)]
        | Annotated[list[_Seed], Field(min_length=1, max_length=MAX_SEEDS)]
    ) = 3  # n -> seeds 0..n-1, or the seeds
    description: Annotated[str, Strict()] = ""


class _File(_Table):
    study: dict[str, Any]
    tasks: dict[str, dict[str, Any]] = {}
    data_sizes: dict[str, Any] = Field(min_length=1)  # one list of finetuning sizes per method
    pet_sizes: dict[str, Any] = {}
    training: dict[str, Any] = {}
    fit: dict[str, Any] = {}
    transfer: dict[str, Any] = {}


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


def _err(path: Path | None, msg: str) -> UserError:
    return UserError(msg, path=None if path is None else str(path))


def _unique(values: Any, key: str, path: Path | None) -> tuple:
    values = [values] if isinstance(values, str | int) else values
    if len(set(values)) != len(values):
        raise _err(path, f"{key}: repeated values {values}")
    return tuple(values)


class _SizeTable(RootModel[dict[str, _Sizes]]):
    """``[data_sizes]`` or ``[pet_sizes]``: method -> sizes."""


def _sizes(table: dict[str, Any], name: str, path: Path | None) -> dict[str, tuple[int, ...]]:
    sizes = validated(_SizeTable, table, f"{name}.", path).root
    return {m: tuple(sorted(_unique(v, f"{name}.{m}", path))) for m, v in sizes.items()}


def _check_run_config(study: Study, path: Path | None) -> None:
    """Build one finetuning config per method and let the engine validate it, so a bad setting
    is rejected before anything runs (a wrong type named by its key: ``training.steps``)."""
    for method in study.methods:
        settings = study.training_for(method)
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
            key = getattr(exc, "key", None)
            if getattr(exc, "type_error", False) and key in settings:
                own = key in study.training_by_method.get(method, {})
                raise _err(path, f"training.{method + '.' if own else ''}{key}: {exc}") from None
            raise _err(path, f"training ({method}): {exc}") from None


def parse_study(data: dict[str, Any], path: Path | None = None) -> Study:
    """Validate a parsed study (a TOML document as a dict) and return a :class:`Study`."""
    doc = validated(_File, data, "", path)
    s = validated(_StudyTable, doc.study, "study.", path)
    if s.task is not None and s.tasks is not None:
        raise _err(path, "study.task and study.tasks both given: use one")
    given = s.tasks if s.tasks is not None else s.task
    listed = _unique(list(doc.tasks) if given is None else given, "study.tasks", path)
    if not listed:
        raise _err(path, "study.tasks: expected a non-empty list of strings")
    tasks, task_sources = task_refs(listed, doc.tasks, path)
    methods = _unique(s.methods, "study.methods", path)
    for m in methods:
        if m not in METHODS:
            raise _err(path, f"study.methods: unknown method '{m}' (known: {', '.join(METHODS)})")
    models = _unique(s.models, "study.models", path)
    seeds = _unique(range(s.seeds) if isinstance(s.seeds, int) else s.seeds, "study.seeds", path)
    pet = pet_methods()
    if s.factor == "pet_size" and len(models) != 1:
        raise _err(path, "study.models: a pet_size study scales one model (give exactly one)")
    if s.factor == "pet_size" and any(m not in pet for m in methods):
        raise _err(
            path, f"study.methods: a pet_size study takes PET methods only ({', '.join(pet)})"
        )
    for table in ("data_sizes", "pet_sizes", "training"):
        for key, value in getattr(doc, table).items():
            if key not in methods and (table != "training" or isinstance(value, dict)):
                raise _err(path, f"{table}.{key}: '{key}' is not one of study.methods")
    data_sizes = _sizes(doc.data_sizes, "data_sizes", path)
    for m in methods:
        if m not in data_sizes:
            raise _err(path, f"data_sizes.{m}: missing (every method needs its data sizes)")
        if m in doc.pet_sizes and m not in pet:
            raise _err(path, f"pet_sizes.{m}: only for the PET methods of study.methods")
        if m in pet and m not in doc.pet_sizes and s.factor == "pet_size":
            raise _err(path, f"pet_sizes.{m}: a pet_size study needs the sizes of every method")
    given = {m: v if isinstance(v, list) else [v] for m, v in doc.pet_sizes.items()}
    given = _sizes(given, "pet_sizes", path)
    pet_sizes = {m: given.get(m, (study_pet_size(m),)) for m in methods if m in pet}
    for m, sizes in pet_sizes.items():
        if s.factor == "pet_size" and len(sizes) < 2:
            raise _err(path, f"pet_sizes.{m}: a pet_size study needs at least 2 sizes")
        if s.factor != "pet_size" and len(sizes) > 1:
            raise _err(path, f'pet_sizes.{m}: several sizes need factor = "pet_size"')
    allowed = ", ".join(sorted(training_keys()))
    tables = {"": doc.training, **{m: v for m, v in doc.training.items() if isinstance(v, dict)}}
    for where, table in tables.items():
        for key in table:
            if key not in training_keys() and (where or not isinstance(table[key], dict)):
                at = f"training.{where + '.' if where else ''}{key}"
                raise _err(path, f"unknown key '{at}' (allowed: {allowed})")
    transfer = validated(TransferSpec, doc.transfer, "transfer.", path)
    if transfer.decode > transfer.sample:
        raise _err(path, "transfer.decode: cannot exceed transfer.sample")
    study = Study(
        name=s.name or (path.stem if path is not None else "study"),
        path=path,
        tasks=tasks,
        factor=s.factor,
        models=models,
        methods=methods,
        seeds=seeds,
        data_sizes=data_sizes,
        pet_sizes=pet_sizes,
        training={k: v for k, v in doc.training.items() if not isinstance(v, dict)},
        training_by_method={m: dict(v) for m, v in tables.items() if m},
        fit=validated(FitSpec, doc.fit, "fit.", path),
        transfer=transfer,
        description=s.description,
        task_sources=task_sources,
    )
    _check_run_config(study, path)
    return study


def load_study(path: str | Path) -> Study:
    """Read and validate a study file (TOML)."""
    return parse_study(read_user_toml(path, "study"), Path(path))
