"""Curve and fit health: the checks that qualify a fit's answer, in words a user acts on.

Three checks (definitions and thresholds in docs/laws.md, "Health checks"), and
:func:`zero_shot_health` (curves on which finetuning did not beat the base model):

- **Curve health** (:func:`curve_health`): a curve (the seed-mean points of one task, method
  and factor value) whose loss RISES with data by more than its seed spread. For data sizes
  d_i < d_j on the curve, rise = L_j - L_i and spread = sqrt(sd_i^2 + sd_j^2), sd the sample
  standard deviation of the seeds' losses at that size; the pair is flagged when rise > spread,
  or, with a single seed at either size (no spread), when rise > 0. The largest flagged rise
  of each curve is reported.
- **Law health** (:func:`law_health`): a law "does not extrapolate" when its held-out error
  Delta_h is over :data:`LAW_RATIO` x its fit error Delta_e AND over :data:`NOISE_Z` x the
  noise expected at its held-out points (the standard errors of their seed means and the
  law's bootstrap spread there, root-mean-square); with one seed per held-out point and no
  bootstrap the noise is unknown and the Delta_e test decides alone.
- **Extrapolation** (:func:`judge_range`): a critical data size, a flip of a recommendation or
  a recommended data size outside the runs of either method compared (not inside both methods'
  [min, max] run data sizes at that factor value) is "extrapolated beyond the runs".

Losses are in nats/token, data sizes in examples. Pure Python over the points and fit records
that :mod:`ftscale.analysis.fit` produces; no fitting happens here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ftscale.textfmt import fmt_size

#: A law does not extrapolate when Delta_h exceeds this multiple of its Delta_e ...
LAW_RATIO = 3.0
#: ... and this many times the noise expected at its held-out points (for one held-out point,
#: a correct law's |residual| exceeds 2 standard deviations ~5% of the time; for the mean over
#: several, less often).
NOISE_Z = 2.0
#: What to do about a curve that rises with data.
CURVE_ADVICE = (
    "the run at {to} examples did not reach its best; consider a schedule that anneals "
    'before the run ends (schedule = "wsd") or a learning-rate search on dev '
    '(lr = "auto"); docs/finetune.md'
)
#: Words for the factors in sentences.
FACTOR_WORD = {
    "model_size": "model size",
    "pretrain_tokens": "pretraining data",
    "pet_size": "PET size",
}
#: Relative tolerance when a factor value or data size is compared with a measured one.
_REL = 1e-9


def method_label(method: str) -> str:
    """The method's name in reports ("LoRA"); a name outside the registry as it is."""
    from ftscale.finetune.methods import METHODS

    m = METHODS.get(method)
    return m.label or method if m is not None else method


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def seed_sd(loss_std: float | None, n_seeds: int | None) -> float | None:
    """The sample standard deviation (n - 1 denominator) of a point's seed losses, from the
    population standard deviation ``loss_std`` that the points carry (nats/token); None with
    fewer than two seeds."""
    if n_seeds is None or n_seeds < 2 or not _finite(loss_std):
        return None
    return float(loss_std) * math.sqrt(n_seeds / (n_seeds - 1))


def mean_se(loss_std: float | None, n_seeds: int | None) -> float | None:
    """The standard error of a point's seed mean (nats/token): ``seed_sd / sqrt(n_seeds)``;
    None with fewer than two seeds."""
    sd = seed_sd(loss_std, n_seeds)
    return None if sd is None else sd / math.sqrt(n_seeds)


def intervals_separate(a: Sequence[float] | None, b: Sequence[float] | None) -> bool | None:
    """Whether two intervals [lo, hi] do not overlap; None when either is missing."""
    if not a or not b or not all(_finite(v) for v in (*a, *b)):
        return None
    return bool(a[1] < b[0] or b[1] < a[0])


# -- curve health ---------------------------------------------------------------------------


def curve_health(
    points: Iterable[dict[str, Any]],
    keys: Sequence[str],
    *,
    data: str = "data_size",
    target: str = "loss",
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """The worst rise with data of every curve that rises by more than its seed spread.

    ``points``: seed means with ``keys``, ``data`` (examples), ``target`` (nats/token),
    ``loss_std`` (population standard deviation over seeds) and ``n_seeds``. A curve is the
    points that share ``keys``; a key whose value is None is left out of the curve's record.
    For every pair of sizes d_i < d_j of a curve, rise = L_j - L_i and spread = sqrt(sd_i^2 +
    sd_j^2) (:func:`seed_sd`); a pair is flagged when rise > spread, or when rise > 0 and either
    point has one seed (spread None). Of a curve's flagged pairs the largest rise is reported:
    ``{**keys, "from_size", "to_size", "from_loss", "to_loss", "rise", "spread", "n_seeds":
    [n_i, n_j], "single_seed", "message"}``, curves in the order first seen. ``describe``
    names a curve (its key values) in the message.
    """
    curves: dict[tuple, list[dict[str, Any]]] = {}
    for p in points:
        key = tuple(p.get(k) for k in keys)
        curves.setdefault(key, []).append(p)
    out = []
    for key, pts in curves.items():
        pts = sorted(pts, key=lambda p: float(p[data]))
        worst = None
        for i, a in enumerate(pts):
            for b in pts[i + 1 :]:
                if not float(a[data]) < float(b[data]):
                    continue
                rise = float(b[target]) - float(a[target])
                if not rise > 0:
                    continue
                sa = seed_sd(a.get("loss_std"), a.get("n_seeds"))
                sb = seed_sd(b.get("loss_std"), b.get("n_seeds"))
                spread = None if sa is None or sb is None else math.hypot(sa, sb)
                if spread is not None and not rise > spread:
                    continue
                if worst is None or rise > worst[2]:
                    worst = (a, b, rise, spread)
        if worst is None:
            continue
        a, b, rise, spread = worst
        ident = {k: v for k, v in zip(keys, key, strict=True) if v is not None}
        rec = {
            **ident,
            "from_size": float(a[data]),
            "to_size": float(b[data]),
            "from_loss": float(a[target]),
            "to_loss": float(b[target]),
            "rise": rise,
            "spread": spread,
            "n_seeds": [_n(a), _n(b)],
            "single_seed": spread is None,
        }
        rec["message"] = curve_message(rec, describe(ident) if describe else _describe(ident))
        out.append(rec)
    return out


def _n(p: dict[str, Any]) -> int | None:
    n = p.get("n_seeds")
    return None if n is None else int(n)


def _describe(ident: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if _finite(v) else f"{k}={v}" for k, v in ident.items()) or (
        "the curve"
    )


def curve_message(rec: dict[str, Any], label: str) -> str:
    """A rising curve (:func:`curve_health` record) in words."""
    head = (
        f"{label}: loss rises from {fmt_size(rec['from_size'])} to {fmt_size(rec['to_size'])} "
        f"examples by {rec['rise']:.3g} nats/token"
    )
    if rec["spread"] is None:
        head += " (single seed: no seed spread to compare with)"
    else:
        head += f", more than the seed spread {rec['spread']:.2g}"
    return f"{head}: {CURVE_ADVICE.format(to=fmt_size(rec['to_size']))}."


#: What to do about a curve whose finetuned runs did not beat the base model.
ZERO_SHOT_ADVICE = (
    "finetuning did not beat zero-shot; the base model (step 0) is the kept checkpoint where "
    'base_candidate is on. Search the rate on dev (lr = "auto") or give more data; '
    "docs/finetune.md"
)


def zero_shot_health(
    rows: Iterable[dict[str, Any]],
    keys: Sequence[str],
    *,
    data: str = "data_size",
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> list[dict[str, Any]]:
    """The curves on which finetuning did not beat zero-shot.

    ``rows``: finished runs with ``keys``, ``data`` (examples), ``loss`` and ``zero_shot_loss``
    (test loss of the finetuned and of the base model, nats/token); rows missing either loss
    are skipped. At each data size of a curve (the rows sharing ``keys``) the gain is the seed
    mean of ``zero_shot_loss - loss``; a size is flagged when the gain is not positive. One
    record per curve with a flagged size: ``{**keys, "sizes": [flagged sizes], "gain": [their
    gains], "zero_shot_loss": mean base loss, "message"}``, curves in the order first seen.
    """
    curves: dict[tuple, dict[float, list[tuple[float, float]]]] = {}
    for r in rows:
        loss, zero = r.get("loss"), r.get("zero_shot_loss")
        if not (_finite(loss) and _finite(zero) and _finite(r.get(data))):
            continue
        key = tuple(r.get(k) for k in keys)
        curves.setdefault(key, {}).setdefault(float(r[data]), []).append((zero, loss))
    out = []
    for key, by_size in curves.items():
        flagged = []
        for d in sorted(by_size):
            pairs = by_size[d]
            gain = sum(z - lo for z, lo in pairs) / len(pairs)
            if not gain > 0:
                flagged.append((d, gain, sum(z for z, _ in pairs) / len(pairs)))
        if not flagged:
            continue
        ident = {k: v for k, v in zip(keys, key, strict=True) if v is not None}
        label = describe(ident) if describe else _describe(ident)
        sizes = ", ".join(fmt_size(d) for d, _, _ in flagged)
        out.append(
            {
                **ident,
                "sizes": [d for d, _, _ in flagged],
                "gain": [g for _, g, _ in flagged],
                "zero_shot_loss": flagged[0][2],
                "message": (
                    f"{label}: at {sizes} examples the finetuned test loss is not below the "
                    f"base model's ({flagged[0][2]:.3f} nats/token): {ZERO_SHOT_ADVICE}."
                ),
            }
        )
    return out


# -- law health -----------------------------------------------------------------------------


def law_health(
    delta_e: float,
    delta_h: float | None,
    held: Iterable[tuple[float | None, int | None]] = (),
    law_sd: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Whether a fitted law extrapolates to its held-out points.

    ``delta_e`` / ``delta_h``: mean |L_hat - L| on fitted / held-out points (nats/token);
    ``held``: (loss_std, n_seeds) of each held-out point; ``law_sd``: the spread of the law's
    bootstrap predictions at each held-out point (half the width of their 16-84% percentile
    interval: a standard deviation robust to a few wild draws; None without bootstrap draws).

    The noise expected at a held-out point is sqrt(se^2 + sd^2): the standard error of its seed
    mean (:func:`mean_se`; unknown with one seed) and the law's own uncertainty there (its
    bootstrap spread). ``seed_noise``, ``law_noise`` and ``noise`` are the root-mean-square of
    se, sd and that combination over the held-out points (each None when unknown at every
    point). The law does not extrapolate when delta_h > LAW_RATIO * delta_e and, where the
    noise is known, delta_h > NOISE_Z * noise. Returns ``{"extrapolates": bool | None (no
    held-out points), "reason", "delta_e", "delta_h", "seed_noise", "law_noise", "noise",
    "threshold"}``, threshold being the Delta_h above which the law is flagged.
    """
    held = list(held)
    sds = list(law_sd) if law_sd is not None else [None] * len(held)
    ses = [mean_se(s, n) for s, n in held]
    seed_noise = _rms([v for v in ses if v is not None])
    law_noise = _rms([v for v in sds if _finite(v)])
    both = [
        math.hypot(se or 0.0, sd if _finite(sd) else 0.0)
        for se, sd in zip(ses, sds, strict=True)
        if se is not None or _finite(sd)
    ]
    noise = _rms(both)
    out: dict[str, Any] = {
        "extrapolates": None,
        "reason": "no held-out points: extrapolation not tested",
        "delta_e": delta_e,
        "delta_h": delta_h,
        "seed_noise": seed_noise,
        "law_noise": law_noise,
        "noise": noise,
        "threshold": None,
    }
    if delta_h is None or not _finite(delta_e):
        return out
    threshold = LAW_RATIO * delta_e if noise is None else max(LAW_RATIO * delta_e, NOISE_Z * noise)
    out["threshold"] = threshold
    ratio = f"{delta_h / delta_e:.1f}x" if delta_e > 0 else "far above"
    if delta_h > threshold:
        out["extrapolates"] = False
        why = (
            f"held-out error Delta_h {delta_h:.3g} nats/token is {ratio} its fit error "
            f"Delta_e {delta_e:.3g}"
        )
        if noise is None:
            why += " (one seed per held-out point and no bootstrap: no noise to compare with)"
        else:
            why += (
                f" and {delta_h / noise:.1f}x the noise {noise:.2g} expected at the held-out points"
            )
            if law_noise is None:
                why += " (without bootstrap draws the law's own uncertainty there is not counted)"
        out["reason"] = why
    else:
        out["extrapolates"] = True
        if delta_h <= LAW_RATIO * delta_e:
            out["reason"] = (
                f"Delta_h {delta_h:.3g} nats/token is within {LAW_RATIO:g}x Delta_e {delta_e:.3g}"
            )
        else:
            out["reason"] = (
                f"Delta_h {delta_h:.3g} nats/token is within {NOISE_Z:g}x the noise "
                f"{noise:.2g} expected at the held-out points"
            )
    return out


def _rms(values: Sequence[float]) -> float | None:
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else None


def law_message(label: str, health: dict[str, Any]) -> str:
    """A law that does not extrapolate (:func:`law_health` False) in words."""
    return (
        f"{label}: does not extrapolate: its {health['reason']}; its predictions beyond the "
        "fitted runs (critical data sizes, recommendations) are not reliable: check the held-out "
        "runs, add runs between the fitted and held-out sizes, or compare another law"
    )


# -- measured ranges ------------------------------------------------------------------------


def ranges_of(data: Sequence[float], factor: Sequence[float] | None = None) -> dict[str, Any]:
    """The measured ranges of a fit's points (fitted and held out): ``{"data_range": [min,
    max] (examples), "factor_range": [min, max] | None, "data_range_by_factor": [{"x",
    "data_range"}] | None}`` (the factor parts None for one-factor laws)."""
    d = [float(v) for v in data]
    out: dict[str, Any] = {
        "data_range": [min(d), max(d)] if d else None,
        "factor_range": None,
        "data_range_by_factor": None,
    }
    if factor is not None and len(d):
        x = [float(v) for v in factor]
        by: dict[float, list[float]] = {}
        for xv, dv in zip(x, d, strict=True):
            by.setdefault(xv, []).append(dv)
        out["factor_range"] = [min(x), max(x)]
        out["data_range_by_factor"] = [
            {"x": xv, "data_range": [min(ds), max(ds)]} for xv, ds in sorted(by.items())
        ]
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL)


def _inside(v: float, lo: float, hi: float) -> bool:
    return lo * (1 - _REL) <= v <= hi * (1 + _REL)


def measured_range(rec: dict[str, Any], x: float | None) -> list[float] | None:
    """The data sizes (examples) a fit record's runs cover at factor value ``x``: its range at
    ``x`` where ``x`` is a measured factor value, else its whole data range; None for a record
    without ranges (a fits file written before they existed)."""
    rng = rec.get("data_range")
    if not rng:
        return None
    if x is not None:
        for e in rec.get("data_range_by_factor") or []:
            if _close(float(e["x"]), float(x)):
                return list(e["data_range"])
    return list(rng)


def judge_range(
    d: float | None, records: Sequence[dict[str, Any]], x: float | None = None
) -> dict[str, Any]:
    """Whether data size ``d`` (examples) at factor value ``x`` lies inside the runs of every
    record (method) of ``records``: ``{"measured_range": [lo, hi] | None, "extrapolated": bool
    | None}``. The measured range is the intersection of the records' :func:`measured_range`
    (None when it is empty); ``d`` is extrapolated when it lies outside it, or when ``x`` lies
    outside a record's factor range. Both are None when a record carries no ranges
    (``extrapolated`` also when ``d`` is None: nothing to judge)."""
    ranges = [measured_range(r, x) for r in records]
    if not ranges or any(r is None for r in ranges):
        return {"measured_range": None, "extrapolated": None}
    lo, hi = max(r[0] for r in ranges), min(r[1] for r in ranges)
    joint = [lo, hi] if lo <= hi else None
    if d is None:
        return {"measured_range": joint, "extrapolated": None}
    outside_x = x is not None and any(
        r.get("factor_range") and not _inside(float(x), *r["factor_range"]) for r in records
    )
    extrapolated = outside_x or joint is None or not _inside(float(d), lo, hi)
    return {"measured_range": joint, "extrapolated": bool(extrapolated)}


def range_text(rng: Sequence[float] | None) -> str:
    """A measured range as text: "25-800 examples" (or "no common range")."""
    if not rng:
        return "no data size that both ran"
    return f"{fmt_size(rng[0])}-{fmt_size(rng[1])} examples"
