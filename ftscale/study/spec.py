"""Study files: a TOML description of a finetuning scaling sweep, validated before anything runs.

A study scales finetuning data size jointly with ONE other factor (``model_size``,
``pretrain_tokens`` or ``pet_size``), as the paper does; the file format is in docs/study.md and
examples/. The tables are pydantic models (strict types, no unknown keys, bounds); an unknown
key, a wrong type or a contradiction (a PET-size study with FMT, a method without data sizes,
...) raises :class:`UserError` naming the key (``study.factor: ...``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from ftscale.errors import UserError
from ftscale.finetune.config import TRANSFER_SHOTS, FinetuneConfig, problem, validate
from ftscale.finetune.methods import METHODS, pet_methods, pet_size_fields

Factor = Literal["model_size", "pretrain_tokens", "pet_size"]
FACTORS = get_args(Factor)
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


class FitSpec(_Table):
    """``[fit]``: the laws fitted and how they are scored (``ftscale.analysis.study``)."""

    laws: tuple[Annotated[str, Strict()], ...] = Field(("auto",), min_length=1)  # "auto": all
    holdout_largest: tuple[Factor | Literal["data_size"], ...] = ("model_size", "data_size")
    holdout: Annotated[str, Strict()] = ""  # an extra hold-out expression
    space: Literal["linear", "log"] = "linear"
    bootstrap: Annotated[int, Strict(), Field(ge=0)] = 100
    huber_delta: Annotated[float, Strict(), Field(gt=0)] = 1e-3
    seed: _Seed = 0

    @field_validator("laws")
    @classmethod
    def _known_laws(cls, laws: tuple[str, ...]) -> tuple[str, ...]:
        from ftscale.laws.registry import LAWS  # the law registry (numpy/scipy only)

        bad = [law for law in laws if law not in LAWS and law != "auto"]
        if bad:
            raise ValueError(f"unknown law '{bad[0]}' (known: {', '.join(LAWS)})")
        return laws


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


def _parse(model: type[BaseModel], table: Any, where: str, path: Path | None) -> Any:
    """``table`` validated by ``model``; the first problem as ``where.key: ...``."""
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = where + ".".join(str(k) for k in err["loc"][:1])
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(model.model_fields))
            raise _err(path, f"unknown key '{key}' (allowed: {allowed})") from None
        text = err["msg"].removeprefix("Value error, ") if err["type"] == "value_error" else None
        raise _err(path, f"{key.rstrip('.') or 'file'}: {text or problem(err)}") from None


def _unique(values: Any, key: str, path: Path | None) -> tuple:
    values = [values] if isinstance(values, str | int) else values
    if len(set(values)) != len(values):
        raise _err(path, f"{key}: repeated values {values}")
    return tuple(values)


def _sizes(value: Any, key: str, path: Path | None) -> tuple[int, ...]:
    sizes = _parse(_SizesModel, {"v": value}, f"{key}.", path).v
    return tuple(sorted(_unique(sizes, key, path)))


class _SizesModel(_Table):
    v: _Sizes


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
    doc = _parse(_File, data, "", path)
    s = _parse(_StudyTable, doc.study, "study.", path)
    if s.task is not None and s.tasks is not None:
        raise _err(path, "study.task and study.tasks both given: use one")
    given = s.tasks if s.tasks is not None else s.task
    listed = _unique(list(doc.tasks) if given is None else given, "study.tasks", path)
    if not listed:
        raise _err(path, "study.tasks: expected a non-empty list of strings")
    tasks, task_sources = _task_sources(listed, doc.tasks, path)
    methods = _unique(s.methods, "study.methods", path)
    known = tuple(METHODS)
    for m in methods:
        if m not in known:
            raise _err(path, f"study.methods: unknown method '{m}' (known: {', '.join(known)})")
    factor, models = s.factor, _unique(s.models, "study.models", path)
    seeds = tuple(range(s.seeds)) if isinstance(s.seeds, int) else s.seeds
    _unique(seeds, "study.seeds", path)
    pet = pet_methods()
    if factor == "pet_size" and len(models) != 1:
        raise _err(path, "study.models: a pet_size study scales one model (give exactly one)")
    if factor == "pet_size" and any(m not in pet for m in methods):
        raise _err(
            path, f"study.methods: a pet_size study takes PET methods only ({', '.join(pet)})"
        )
    for key in [
        *doc.data_sizes,
        *doc.pet_sizes,
        *(k for k, v in doc.training.items() if isinstance(v, dict)),
    ]:
        if key not in methods:
            table = next(
                t for t in ("data_sizes", "pet_sizes", "training") if key in getattr(doc, t)
            )
            raise _err(path, f"{table}.{key}: '{key}' is not one of study.methods")
    data_sizes = {m: _sizes(v, f"data_sizes.{m}", path) for m, v in doc.data_sizes.items()}
    pet_sizes = {}
    for m in methods:
        if m not in data_sizes:
            raise _err(path, f"data_sizes.{m}: missing (every method needs its data sizes)")
        if m in doc.pet_sizes and m not in pet:
            raise _err(path, f"pet_sizes.{m}: only for the PET methods of study.methods")
        if m in doc.pet_sizes:
            sizes = doc.pet_sizes[m]
            pet_sizes[m] = _sizes(
                sizes if isinstance(sizes, list) else [sizes], f"pet_sizes.{m}", path
            )
        elif m in pet and factor == "pet_size":
            raise _err(path, f"pet_sizes.{m}: a pet_size study needs the sizes of every method")
        elif m in pet:
            pet_sizes[m] = (study_pet_size(m),)
        n = len(pet_sizes.get(m, ()))
        if factor == "pet_size" and n < 2:
            raise _err(path, f"pet_sizes.{m}: a pet_size study needs at least 2 sizes")
        if factor != "pet_size" and n > 1:
            raise _err(path, f'pet_sizes.{m}: several sizes need factor = "pet_size"')
    allowed = ", ".join(sorted(training_keys()))
    tables = {"": doc.training, **{m: v for m, v in doc.training.items() if isinstance(v, dict)}}
    for where, table in tables.items():
        for key in table:
            if key not in training_keys() and (where or not isinstance(table[key], dict)):
                at = f"training.{where + '.' if where else ''}{key}"
                raise _err(path, f"unknown key '{at}' (allowed: {allowed})")
    transfer = _parse(TransferSpec, doc.transfer, "transfer.", path)
    if transfer.decode > transfer.sample:
        raise _err(path, "transfer.decode: cannot exceed transfer.sample")
    study = Study(
        name=s.name or (path.stem if path is not None else "study"),
        path=path,
        tasks=tasks,
        factor=factor,
        models=models,
        methods=methods,
        seeds=seeds,
        data_sizes=data_sizes,
        pet_sizes=pet_sizes,
        training={k: v for k, v in doc.training.items() if not isinstance(v, dict)},
        training_by_method={m: dict(v) for m, v in tables.items() if m},
        fit=_parse(FitSpec, doc.fit, "fit.", path),
        transfer=transfer,
        description=s.description,
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
