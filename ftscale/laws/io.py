"""Fits files: the JSON that ``ftscale fit --out`` writes and ``critical``/``recommend`` read.

``{"ftscale_fits": 1, "fits": [record, ...]}``; a record is what :func:`fit_record` returns
(documented in docs/laws.md). Bootstrap parameter samples travel in the file so that
recommendations can give prediction intervals.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ftscale.errors import UserError
from ftscale.laws.base import ScalingLaw
from ftscale.laws.registry import get_law

FORMAT_VERSION = 1


def fit_record(
    law: ScalingLaw,
    *,
    group: dict[str, Any],
    factor: str | None,
    data: str,
    target: str,
    cost_models: dict[str, dict] | None = None,
    with_samples: bool = True,
) -> dict[str, Any]:
    """The JSON record of one fitted law (``with_samples``: include bootstrap samples)."""
    rec: dict[str, Any] = {
        "group": group,
        "law": law.name,
        "formula": law.formula,
        "factor": factor,
        "data": data,
        "target": target,
        "space": law.space,
        "huber_delta": law.huber_delta,
        "params": law.params_,
        "fixed": list(law.fixed_),
        "n_fit": law.n_fit_,
        "n_holdout": law.n_holdout_,
        "delta_e": law.delta_e_,
        "delta_h": law.delta_h_,
        "ci": {k: list(v) for k, v in law.ci_.items()},
        "converged": bool(law.converged_),
        "at_bound": list(getattr(law, "at_bound_", [])),
        "message": law.message_,
        "objective": law.objective_,
        "n_starts": law.n_starts_,
        "n_bootstrap": law.n_bootstrap_,
        "seed": law.seed,
        "cost_models": cost_models or {},
    }
    if law.covariate is not None:
        # the law's factor is a measurement per factor value: the pairs travel with the fit
        rec["covariate"] = {"column": law.covariate, "map": [list(p) for p in law.covariate_map]}
    if law.bootstrap_params_ is not None:
        rec["bootstrap_converged"] = getattr(law, "bootstrap_converged_", None)
    if with_samples and law.bootstrap_params_ is not None:
        rec["bootstrap_params"] = law.bootstrap_params_.tolist()
    return rec


def comparable_fits(fits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fit records that compare methods: the joint ones (a factor fitted), or, where there
    are none (a study of one model), the one-factor fits at that model."""
    joint = [f for f in fits if f.get("factor") is not None]
    return joint or list(fits)


def chosen_records(
    fits: list[dict[str, Any]], task: str | None = None, law: str | None = None
) -> dict[tuple[Any, Any], dict[str, Any]]:
    """The joint fit records (a factor fitted) by (task, method): of ``law`` if given, else each
    group's chosen law (``"chosen": true``: law choice by held-out error), else the group's
    first listed joint fit (the study's first law). Never a law's name: any registered law
    can be the one used. Without joint fits, the one-factor fits (:func:`comparable_fits`)."""
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for f in comparable_fits(fits):
        key = (f["group"].get("task"), f["group"].get("method"))
        if task is not None and key[0] != task:
            continue
        if law is not None:
            if f["law"] == law:
                out[key] = f
        elif not out.get(key, {}).get("chosen") and (f.get("chosen") or key not in out):
            out[key] = f
    return out


def law_from_record(rec: dict[str, Any], path: str | None = None) -> ScalingLaw:
    """Rebuild a fitted law (parameters and bootstrap samples) from a record; a record whose
    law, space, Huber delta, parameters or samples are not what ``fit`` writes is a UserError."""
    try:
        cls = get_law(rec["law"])
    except (KeyError, TypeError) as exc:
        raise UserError(f"malformed fit record ({exc})", path=path) from None
    space = rec.get("space", "linear")
    if space not in ("linear", "log"):
        raise UserError(f"fit record: space must be 'linear' or 'log', got {space!r}", path=path)
    delta = rec.get("huber_delta", 1e-3)
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not delta > 0:
        raise UserError(f"fit record: huber_delta must be > 0, got {delta!r}", path=path)
    params = rec.get("params")
    if not isinstance(params, dict):
        raise UserError("fit record: params must be an object of numbers", path=path)
    for name in cls.param_names:
        v = params.get(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise UserError(
                f"fit record: parameter {name!r} of the {cls.name} law must be a finite number, "
                f"got {v!r}",
                path=path,
            )
    extra: dict[str, Any] = {}
    if cls.covariate is not None:
        extra["covariate_map"] = _covariate_map(rec, cls, path)
    try:
        law = cls(space=space, huber_delta=float(delta), **extra)
        law.load_fitted({k: float(params[k]) for k in cls.param_names})
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"malformed fit record ({exc})", path=path) from None
    samples = rec.get("bootstrap_params")
    if samples:
        try:
            arr = np.asarray(samples, dtype=float)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.ndim != 2 or arr.shape[1] != len(cls.param_names):
            raise UserError(
                f"malformed bootstrap_params in fit record (expected rows of "
                f"{len(cls.param_names)} numbers)",
                path=path,
            )
        law.bootstrap_params_ = arr
    return law


def _covariate_map(
    rec: dict[str, Any], cls: type[ScalingLaw], path: str | None
) -> tuple[tuple[float, float], ...]:
    """A covariate law's (factor value, covariate) pairs from its record's ``covariate``."""
    cov = rec.get("covariate")
    pairs = cov.get("map") if isinstance(cov, dict) else None
    try:
        arr = np.asarray(pairs, dtype=float)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 2:
        raise UserError(
            f"fit record of the {cls.name} law: covariate.map must list two or more "
            f"[factor value, {cls.covariate}] pairs",
            path=path,
        )
    if not (np.isfinite(arr).all() and (arr > 0).all()):
        raise UserError(
            f"fit record of the {cls.name} law: covariate.map values must be positive numbers",
            path=path,
        )
    return tuple((float(a), float(b)) for a, b in arr)


def load_fits(path: str) -> list[dict[str, Any]]:
    """Read and validate a fits file; every problem is a one-line :class:`UserError`."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise UserError("no such fits file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read fits file: {exc}", path=path) from None
    except json.JSONDecodeError as exc:
        raise UserError(f"not a JSON fits file ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("fits"), list):
        raise UserError('not a fits file (expected {"fits": [...]})', path=path)
    version = doc.get("ftscale_fits", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"not a fits file (ftscale_fits = {version!r})", path=path)
    if version > FORMAT_VERSION:
        raise UserError(
            f"fits file format {version}: this ftscale reads format {FORMAT_VERSION} (written by "
            "a newer ftscale?)",
            path=path,
        )
    for i, rec in enumerate(doc["fits"]):
        if not isinstance(rec, dict) or not {"law", "params", "group"} <= set(rec):
            raise UserError(f"fit record {i} lacks law/params/group", path=path)
    if not doc["fits"]:
        raise UserError("the fits file holds no fits", path=path)
    for rec in doc["fits"]:
        law_from_record(rec, path)  # every record must rebuild, before any work
    return doc["fits"]
