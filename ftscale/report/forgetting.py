"""Forgetting in the report: learn (finetuned test loss) against forget (the change of loss on
general text, ``ftscale.finetune.forget``), per task, method and model.

Points are seed means per (task, method, model, data size); PET sizes of one method are
averaged. The finding compares methods at equal finetuned loss: each method's forgetting is
interpolated (linearly, in its points ordered by loss) at one common loss level, the midpoint of
the overlap of the methods' loss ranges; without an overlap there is no equal-loss comparison,
and the finding says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ftscale.analysis.health import method_label
from ftscale.finetune.methods import METHODS

_KEYS = ["task", "method", "model", "data_size"]
_VALS = ("loss", "forgetting", "data_size")


def forgetting_points(results) -> list[dict[str, Any]]:
    """Seed means of finished runs with a forgetting measurement: ``{"task", "method", "model",
    "data_size", "loss", "forgetting", "forgetting_std", "n_seeds"}`` (losses nats/token;
    ``forgetting_std`` the population standard deviation over seeds)."""
    import pandas as pd

    need = {"loss", "forgetting", "status", *_KEYS}
    if results is None or not need <= set(results.columns):
        return []
    df = results[results["status"] == "done"].copy()
    for c in ("loss", "forgetting", "data_size"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df = df[np.isfinite(df["loss"]) & np.isfinite(df["forgetting"])]
    if df.empty:
        return []
    g = df.groupby(_KEYS, sort=True)
    out = g[["loss", "forgetting"]].mean().reset_index()
    out["forgetting_std"] = g["forgetting"].std(ddof=0).to_numpy()
    out["n_seeds"] = g.size().to_numpy()
    return out.to_dict("records")


def _order(methods: set[str]) -> list[str]:
    return sorted(methods, key=lambda m: (list(METHODS).index(m) if m in METHODS else 99, m))


def _curves(points: list[dict[str, Any]], task: str, model: str) -> dict[str, tuple]:
    """Per method: (losses, forgettings, data sizes), ordered by loss."""
    out = {}
    for m in _order({p["method"] for p in points if p["task"] == task and p["model"] == model}):
        mp = sorted(
            (p for p in points if p["task"] == task and p["model"] == model and p["method"] == m),
            key=lambda p: p["loss"],
        )
        out[m] = tuple(np.array([p[k] for p in mp], dtype=float) for k in _VALS)
    return out


def equal_loss_comparison(curves: dict[str, tuple]) -> dict[str, Any] | None:
    """Each method's forgetting at one common finetuned loss (nats/token): the midpoint of the
    overlap of the methods' loss ranges, linear interpolation in each method's points ordered by
    loss. Returns ``{"level", "overlap": (lo, hi), "forgetting": {method: value}, "least"}``,
    ``{"overlap": None, "ranges": {method: (lo, hi)}}`` when the ranges do not overlap, or None
    with fewer than two methods."""
    if len(curves) < 2:
        return None
    ranges = {m: (float(c[0].min()), float(c[0].max())) for m, c in curves.items()}
    lo = max(r[0] for r in ranges.values())
    hi = min(r[1] for r in ranges.values())
    if lo > hi:
        return {"overlap": None, "ranges": ranges}
    level = (lo + hi) / 2
    at = {m: float(np.interp(level, c[0], c[1])) for m, c in curves.items()}
    return {
        "level": level,
        "overlap": (lo, hi),
        "forgetting": at,
        "least": min(at, key=at.get),
        "ranges": ranges,
    }


def _at_equal_loss(cmp: dict[str, Any]) -> str:
    vals = " < ".join(
        f"{method_label(m)} {v:+.3f}"
        for m, v in sorted(cmp["forgetting"].items(), key=lambda kv: kv[1])
    )
    return f"at test loss {cmp['level']:.3f}: {vals}"


def forgetting_findings(points: list[dict[str, Any]]) -> list[str]:
    """One sentence per (task, model) with two or more methods: which method forgets least at
    equal finetuned test loss (the middle of the methods' common loss range; forgetting
    interpolated, nats/token); where all methods share no level, each overlapping pair is
    compared, and a pair that does not overlap is not."""
    out = []
    for task in sorted({p["task"] for p in points}):
        for model in sorted({p["model"] for p in points if p["task"] == task}):
            curves = _curves(points, task, model)
            cmp = equal_loss_comparison(curves)
            if cmp is None:
                continue
            where = f"Forgetting ({task}, {model}; least first): "
            if cmp["overlap"] is not None:
                out.append(where + _at_equal_loss(cmp) + " nats/token.")
                continue
            names = list(curves)
            pairs = []
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    sub = equal_loss_comparison({a: curves[a], b: curves[b]})
                    if sub["overlap"] is not None:
                        pairs.append(_at_equal_loss(sub))
            out.append(
                where
                + ("; ".join(pairs) + " nats/token (pairs; no level common to all)." if pairs
                   else "the methods' test losses share no level: no comparison.")
            )  # fmt: skip
    return out


def forgetting_table(points: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The "Forgetting" table: one row per (task, method, model), one column per data size
    (examples) holding the mean forgetting ± its seed spread (nats/token)."""
    sizes = sorted({p["data_size"] for p in points})
    rank = {m: i for i, m in enumerate(_order({p["method"] for p in points}))}
    rows: dict[tuple, dict[float, str]] = {}
    for p in points:
        key = (p["task"], rank[p["method"]], p["method"], str(p["model"]))
        rows.setdefault(key, {})[p["data_size"]] = (
            f"{p['forgetting']:+.3f}±{p['forgetting_std']:.3f}"
        )
    heads = ["task", "method", "model", *(f"{d:g}" for d in sizes)]
    body = [
        [k[0], method_label(k[2]), k[3], *(cells.get(d, "") for d in sizes)]
        for k, cells in sorted(rows.items())
    ]
    return heads, body


def learn_forget_figure(points: list[dict[str, Any]], task: str, out: Path) -> Path | None:
    """Forgetting (y) against finetuned test loss (x), one curve per method (and model: lighter
    for smaller ones), points by data size (labelled), seed means; a dotted line at zero
    forgetting. Returns the PNG path, or None without points."""
    from ftscale.report.figures import _plt, method_colour, save_figure

    pts = [p for p in points if p["task"] == task]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    models = sorted({p["model"] for p in pts})
    for i, model in enumerate(models):
        alpha = 1.0 if i == len(models) - 1 else 0.45 + 0.5 * i / max(len(models) - 1, 1)
        for m, (loss, forget, sizes) in _curves(pts, task, model).items():
            order = np.argsort(sizes, kind="stable")
            label = method_label(m) + (f" ({model})" if len(models) > 1 else "")
            ax.plot(
                loss[order], forget[order], "o-", color=method_colour(m), alpha=alpha, label=label
            )
            for x, y, d in zip(loss, forget, sizes, strict=True):
                ax.annotate(f"{d:g}", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6)
    ax.axhline(0.0, color="0.3", ls=":", lw=0.8)
    ax.set_xlabel("finetuned test loss (nats/token)")
    ax.set_ylabel("forgetting: Δ loss on general text (nats/token)")
    ax.set_title(f"{task}: learning vs forgetting (labels: data size)", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, out / f"forgetting_{task}.png")
