"""The question the adaptive design sharpens: ``--question`` text parsed into a
:class:`Question`, then resolved against the study (its defaults filled in)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

from ftscale.errors import UserError
from ftscale.study.spec import Study


@dataclass(frozen=True)
class Question:
    """What the adaptive design sharpens (see :mod:`ftscale.study.adaptive`).

    :func:`parse_question` gives one with only what the text says (``task``, ``model``, ``x``
    and ``data_size`` None, ``methods`` empty where the study's default applies);
    :func:`resolve_question` fills every field in."""

    kind: str  # "recommend" | "critical"
    task: str | None = None
    model: str | None = None
    x: float | None = None  # the model's factor value
    data_size: float | None = None  # recommend: examples
    methods: tuple[str, ...] = ()

    def text(self) -> str:
        """The (resolved) question in the ``--question`` syntax."""
        if self.kind == "critical":
            return f"critical {','.join(self.methods)} at model={self.model} task={self.task}"
        return (
            f"recommend at model={self.model} data_size={self.data_size:g} task={self.task} "
            f"among {','.join(self.methods)}"
        )


_KV = re.compile(r"^(model|data_size|task|d|m)=(\S+)$")


def parse_question(text: str | None, study: Study) -> Question:
    """Parse ``--question`` text into a :class:`Question` (None, or no methods, where the
    study's default applies); bad text, an unknown method, model or task is a
    :class:`UserError`."""
    words = (text or "recommend").replace(" at ", " ").split()
    if not words or words[0] not in ("recommend", "critical"):
        raise UserError(
            f"--question: expected 'recommend at model=M data_size=D' or 'critical m1,m2 at "
            f"model=M', got {text!r}"
        )
    out: dict[str, Any] = {
        "kind": words[0],
        "task": None,
        "model": None,
        "data_size": None,
        "methods": None,
    }
    rest = words[1:]
    if out["kind"] == "critical":
        if not rest or "=" in rest[0]:
            raise UserError("--question: 'critical' needs two methods, e.g. 'critical fmt,lora'")
        methods = tuple(m for m in rest[0].split(",") if m)
        if len(methods) != 2 or methods[0] == methods[1]:
            raise UserError(f"--question: 'critical' needs two different methods, got {rest[0]!r}")
        out["methods"] = methods
        rest = rest[1:]
    for w in rest:
        if w == "at":
            continue
        m = _KV.match(w)
        if not m:
            raise UserError(f"--question: cannot read {w!r} (expected model=M, data_size=D)")
        key = {"m": "model", "d": "data_size"}.get(m.group(1), m.group(1))
        out[key] = m.group(2)
    if out["kind"] == "critical" and out["data_size"] is not None:
        raise UserError("--question: 'critical' takes no data_size (it is the answer)")
    for method in out["methods"] or ():
        if method not in study.methods:
            raise UserError(
                f"--question: unknown method {method!r} (study methods: {', '.join(study.methods)})"
            )
    if out["model"] is not None and out["model"] not in study.models:
        raise UserError(
            f"--question: unknown model {out['model']!r} (study models: {', '.join(study.models)})"
        )
    if out["task"] is not None and out["task"] not in study.tasks:
        raise UserError(
            f"--question: unknown task {out['task']!r} (study tasks: {', '.join(study.tasks)})"
        )
    if out["data_size"] is not None:
        try:
            d = float(out["data_size"])
        except ValueError:
            d = math.nan
        if not (d > 0 and math.isfinite(d)):
            raise UserError(f"--question: data_size must be a positive number, got {d!r}")
        out["data_size"] = d
    return Question(
        kind=out["kind"],
        task=out["task"],
        model=out["model"],
        data_size=out["data_size"],
        methods=out["methods"] or (),
    )


def _factor_value(study: Study, model: str, points: list[dict[str, Any]]) -> float | None:
    """The factor value of ``model``: from its finished points, else its recorded size."""
    for p in points:
        if p.get("model") == model and p.get(study.factor) is not None:
            return float(p[study.factor])
    return _registry_value(model, study.factor)


def _registry_value(model: str, factor: str) -> float | None:
    """``factor`` (model_size or pretrain_tokens) of a model without a finished run: the
    ``sim-<size>`` names of :mod:`ftscale.testing.simulated`, else an ftscale checkpoint's
    metadata (None otherwise: a foreign model is sized by its first finished run)."""
    if model.startswith("sim-") and factor == "model_size":
        try:
            return float(model.split("-", 1)[1])
        except ValueError:
            return None
    try:
        from ftscale.models.registry import _find_by_name, _info_from_meta, _read_meta

        path = _find_by_name(model)
        if path is None:
            return None
        value = getattr(_info_from_meta(path, _read_meta(path)), factor, None)
        return None if value is None else float(value)
    except (UserError, OSError, AttributeError):
        return None


def resolve_question(parsed: Question, study: Study, doc: dict[str, Any]) -> Question:
    """Fill a parsed question's defaults from the study and its fits document."""
    points = doc.get("points", [])
    task = parsed.task or study.tasks[0]
    model = parsed.model
    if model is None:
        sized = [(_factor_value(study, m, points), m) for m in study.models]
        known = [(x, m) for x, m in sized if x is not None]
        model = max(known)[1] if known else study.models[-1]
    x = _factor_value(study, model, points)
    if x is None:
        raise UserError(
            f"--question: {study.factor} of model {model!r} unknown (no finished run of it)"
        )
    methods = parsed.methods or study.methods
    data_size = parsed.data_size
    if parsed.kind == "recommend" and data_size is None:
        # the largest data size of the grid that every method runs (not of the runs so far:
        # the question must not move as the design adds runs)
        data_size = float(min(max(study.data_sizes[m]) for m in methods))
    return replace(
        parsed,
        task=task,
        model=model,
        x=float(x),
        data_size=None if data_size is None else float(data_size),
        methods=tuple(methods),
    )
