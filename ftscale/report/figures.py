"""The report's figures (PNG, matplotlib, Agg): the paper's Figures 2-6 for any study.

Same colour for the same method everywhere; log axes where the law is a power law; units on every
axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ftscale.analysis.health import method_label
from ftscale.finetune.methods import METHODS, pet_size_fields
from ftscale.laws.io import chosen_records, law_from_record
from ftscale.laws.registry import LAWS
from ftscale.textfmt import fmt_value

#: Colours of methods that declare none (and of names outside the registry).
_FALLBACK = ["#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
FACTOR_LABELS = {
    "model_size": "model size (parameters)",
    "pretrain_tokens": "pretraining data (tokens)",
    "pet_size": f"PET size ({' / '.join(pet_size_fields().values())})",
}


def method_colour(method: str) -> str:
    """The method's colour (its registry entry's), the same in every figure."""
    m = METHODS.get(method)
    if m is not None and m.colour:
        return m.colour
    return _FALLBACK[sum(map(ord, method)) % len(_FALLBACK)]


def shade(method: str, i: int, n: int) -> tuple[float, float, float]:
    """The method's colour for the ``i``-th of ``n`` factor values: light for the smallest,
    the method's own colour for the largest (so every figure keeps one hue per method)."""
    from matplotlib.colors import to_rgb

    t = 0.35 + 0.65 * (i / max(n - 1, 1))
    return tuple(1.0 - t * (1.0 - c) for c in to_rgb(method_colour(method)))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (PNG), close it; returns ``path``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plain_log_ticks(ax, plt) -> None:
    """Data sizes as plain numbers on a log axis; of the minor ticks only 2x and 5x are
    labelled (a range under one decade would otherwise show no label or a crowd of them)."""
    ticker = plt.matplotlib.ticker
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(
        ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if str(int(round(v)))[0] in "25" else "")
    )


def _pet_choice(doc: dict[str, Any], task: str, method: str) -> dict[str, Any] | None:
    """``pet_size_choice`` of ``method`` on ``task`` (a pet_size study), with the data size and
    tolerance it was made at; None where there is none."""
    for c in doc.get("pet_size_choice") or []:
        ch = c["methods"].get(method) if c.get("task") == task else None
        if ch is not None:
            return {**ch, "data_size": c["data_size"], "tolerance": c["tolerance"]}
    return None


def chosen_fits(
    doc: dict[str, Any], task: str | None = None, law: str | None = None
) -> dict[tuple[Any, Any], dict[str, Any]]:
    """The joint fits (a factor fitted) by (task, method): of ``law`` if given, else each
    group's chosen law, else its first listed joint fit (:func:`ftscale.laws.io.chosen_records`)."""
    return chosen_records(doc.get("fits", []), task, law)


_SYMBOL = {"alpha": "α", "beta": "β"}


def _title_params(fit: dict[str, Any]) -> str:
    """A fit's exponents and floor for a panel title: "α=0.30, β=0.30, E=1.60" (the law's
    parameters not fitted as logs, then E where the law has one)."""
    cls = LAWS.get(fit["law"])
    names = [k for k in fit["params"] if cls is None or k not in cls.log_params]
    names += ["E"] if "E" in fit["params"] and "E" not in names else []
    return ", ".join(f"{_SYMBOL.get(k, k)}={fit['params'][k]:.2f}" for k in names)


def _law_words(law: str | None, fits: dict[str, dict[str, Any]]) -> str:
    """ "the multiplicative law", or the law each method's fit uses."""
    names = sorted({f["law"] for f in fits.values()})
    if law is not None or len(names) == 1:
        return f"{law or names[0]} law"
    short = {n: getattr(LAWS.get(n), "short", n) for n in names}
    return "laws " + ", ".join(f"{method_label(m)} {short[f['law']]}" for m, f in fits.items())


def scaling_figure(
    doc: dict[str, Any], task: str, out: Path, law: str | None = None
) -> Path | None:
    """Test loss against finetuning data size, one panel per method, one curve per factor value,
    the fitted law through the points; dashed beyond the largest fitted data size (the
    extrapolation); held-out points hollow. Returns the PNG path, or None without points."""
    factor = doc["factor"]
    pts = [p for p in doc["points"] if p["task"] == task]
    if not pts:
        return None
    methods = sorted(
        {p["method"] for p in pts},
        key=lambda m: list(METHODS).index(m) if m in METHODS else 99,
    )
    fits = {m: f for (_, m), f in chosen_fits(doc, task, law).items()}
    plt = _plt()
    fig, axes = plt.subplots(
        1, len(methods), figsize=(3.6 * len(methods), 3.2), squeeze=False, sharey=True, sharex=True
    )
    values = sorted({p[factor] for p in pts})
    for ax, method in zip(axes[0], methods, strict=True):
        mp = [p for p in pts if p["method"] == method]
        fit = fits.get(method)
        fitted_d = [p["data_size"] for p in mp if not p["heldout"]]
        dmax_fit = max(fitted_d) if fitted_d else max(p["data_size"] for p in mp)
        dmin = min(p["data_size"] for p in mp)
        dmax = max(p["data_size"] for p in mp)
        for i, v in enumerate(values):
            colour = shade(method, i, len(values))
            vp = sorted((p for p in mp if p[factor] == v), key=lambda p: p["data_size"])
            if not vp:
                continue
            d = np.array([p["data_size"] for p in vp])
            y = np.array([p["loss"] for p in vp])
            held = np.array([p["heldout"] for p in vp])
            ax.errorbar(
                d[~held],
                y[~held],
                yerr=[p["loss_std"] for p, h in zip(vp, held, strict=True) if not h],
                fmt="o",
                ms=4,
                color=colour,
                label=fmt_value(v),
                capsize=2,
                lw=0.8,
            )
            if held.any():
                ax.plot(d[held], y[held], "o", ms=6, mfc="none", mec=colour, mew=1.4)
            if fit is not None:
                model = law_from_record(fit)
                grid_in = np.geomspace(dmin, dmax_fit, 60)
                grid_out = np.geomspace(dmax_fit, dmax * 2.0, 30)
                # A factor value held out entirely (the largest model) is extrapolation too.
                inside = "--" if all(p["heldout"] for p in vp) else "-"
                ax.plot(grid_in, model.predict(v, grid_in), inside, color=colour, lw=1.2)
                ax.plot(grid_out, model.predict(v, grid_out), "--", color=colour, lw=1.2)
        if dmax_fit < dmax * 2:
            ax.axvspan(dmax_fit, dmax * 2.0, color="0.85", alpha=0.35, lw=0)
        choice = _pet_choice(doc, task, method)
        if choice is not None:  # the PET-size figure marks the sizes to use
            ax.text(
                0.03,
                0.04,
                f"at {choice['data_size']:g} examples: best {choice['best']:g}, smallest within "
                f"{choice['tolerance']:g} nats {choice['smallest_within_tolerance']:g}",
                transform=ax.transAxes,
                fontsize=7,
                color=method_colour(method),
            )
            ax.axvline(choice["data_size"], color="0.5", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticker = plt.matplotlib.ticker
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(ticker.FormatStrFormatter("%.2f"))
        _plain_log_ticks(ax, plt)
        ax.set_xlabel("finetuning data (examples)")
        title = method_label(method)
        if fit is not None:
            title += f"  ({_title_params(fit)})"
        else:
            title += "  (no fit)"
        ax.set_title(title, color=method_colour(method), fontsize=9)
    axes[0][0].set_ylabel("test loss (nats/token)")
    # one legend, or one per panel where the methods ran different factor values (PET sizes)
    own = [{p[factor] for p in pts if p["method"] == m} for m in methods]
    for ax in axes[0] if any(v != own[0] for v in own) else [axes[0][-1]]:
        ax.legend(
            title=FACTOR_LABELS.get(factor, factor).split(" (")[0],
            fontsize=7,
            title_fontsize=7,
            loc="upper right",
        )
    sep = "\n" if len(methods) < 3 else "; "
    fig.suptitle(
        f"{task}: {_law_words(law, fits)} by {FACTOR_LABELS.get(factor, factor)}{sep}"
        "hollow = held out, "
        "dashed/grey = extrapolation",
        fontsize=9,
    )
    return save_figure(fig, out / f"scaling_{task}_{factor}.png")


def critical_figure(doc: dict[str, Any], task: str, out: Path) -> Path | None:
    """Critical finetuning data size against the factor for each method pair (Figure 5)."""
    pairs = [c for c in doc.get("critical", []) if c["task"] == task]
    if not pairs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    any_point = False
    extrapolated = False
    all_ys: list[float] = []
    for c in pairs:
        xs = [p["x"] for p in c["points"] if p["critical_data_size"] is not None]
        ys = [p["critical_data_size"] for p in c["points"] if p["critical_data_size"] is not None]
        all_ys += ys
        label = f"{method_label(c['methods'][0])} vs {method_label(c['methods'][1])}"
        style = dict(
            color=method_colour(c["methods"][0]),
            mfc=method_colour(c["methods"][1]),
            mec=method_colour(c["methods"][0]),
        )
        if xs:
            any_point = True
            ax.plot(xs, ys, "o-", ms=6, mew=1.5, label=label, **style)
            beyond = [
                (p["x"], p["critical_data_size"])
                for p in c["points"]
                if p["critical_data_size"] is not None and p.get("extrapolated")
            ]
            if beyond:
                # beyond the runs of either method: a hollow marker over the filled one
                ox, oy = [x for x, _ in beyond], [y for _, y in beyond]
                ax.plot(ox, oy, "o", ms=9, mfc="white", mec=style["color"], mew=1.5)
                extrapolated = True
        else:
            ax.plot([], [], "o-", label=f"{label}: no crossing in range", **style)
    ax.set_xscale("log")
    # a log axis where the sizes span a decade or more; under a decade a log axis labels only
    # the ticks below 10 (or none at all), so the axis stays linear there
    if any_point and max(all_ys) >= 10 * min(all_ys):
        ax.set_yscale("log")
        ticker = plt.matplotlib.ticker
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.yaxis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(FACTOR_LABELS.get(doc["factor"], doc["factor"]))
    ax.set_ylabel("critical finetuning data (examples)")
    ax.set_title(
        f"{task}: where two methods predict equal loss"
        + ("\n(hollow: extrapolated beyond the runs)" if extrapolated else ""),
        fontsize=9,
    )
    ax.legend(fontsize=7)
    return save_figure(fig, out / f"critical_{task}_{doc['factor']}.png")


def transfer_figure(
    rows: list[dict[str, Any]], task: str, out: Path, metric: str = "chrf"
) -> Path | None:
    """Zero-/few-shot quality on related tasks against finetuning data size per method
    (Figure 6). ``rows``: ``{"method", "data_size", "shots", "metric value"...}`` averaged over
    seeds and source languages; the base model's value is drawn as a horizontal line."""
    rows = [r for r in rows if r["task"] == task and r.get(metric) is not None]
    if not rows:
        return None
    plt = _plt()
    shots = sorted({r["shots"] for r in rows})
    fig, axes = plt.subplots(
        1, len(shots), figsize=(3.4 * len(shots), 3.1), squeeze=False, sharey=True
    )
    for ax, k in zip(axes[0], shots, strict=True):
        for method in sorted({r["method"] for r in rows if r["method"] != "base"}):
            mr = sorted(
                (r for r in rows if r["method"] == method and r["shots"] == k),
                key=lambda r: r["data_size"],
            )
            if mr:
                ax.plot(
                    [r["data_size"] for r in mr],
                    [r[metric] for r in mr],
                    "o-",
                    color=method_colour(method),
                    label=method_label(method),
                )
        base = [r[metric] for r in rows if r["method"] == "base" and r["shots"] == k]
        if base:
            ax.axhline(float(np.mean(base)), color="0.3", ls=":", label="base model")
        ax.set_xscale("log")
        # few data sizes: label exactly those
        ticker = plt.matplotlib.ticker
        ax.set_xticks(sorted({r["data_size"] for r in rows if r["method"] != "base"}))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("finetuning data (examples)")
        ax.set_title(f"{k}-shot", fontsize=9)
    axes[0][0].set_ylabel(f"{metric} on related tasks")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"{task}: transfer to related tasks after finetuning", fontsize=9)
    return save_figure(fig, out / f"transfer_{task}.png")


def answer_figure(doc: dict[str, Any], task: str, out: Path, law: str | None = None) -> Path | None:
    """The answer's figure: test loss against finetuning data at the answer's factor value
    (the model the answer is for), one colour per method: its seed-mean points (hollow where
    held out of the fit), its fitted law (dashed beyond its largest fitted data size) and, at
    the answer's data size, its prediction with the 95% interval; the recommended method's
    marked by a star. Returns the PNG path, or None without an answer to draw."""
    answer = doc.get("answer") or {}
    factor = doc["factor"]
    entry = next((a for a in answer.get("tasks") or [] if a.get("task") == task), None)
    if entry is None or entry.get(factor) is None:
        return None
    x, d_ans = entry[factor], entry["data_size"]
    pts = [p for p in doc["points"] if p["task"] == task and p[factor] == x]
    if not pts:
        return None
    fits = {m: f for (_, m), f in chosen_fits(doc, task, law).items()}
    ranking = {r["method"]: r for r in entry.get("ranking") or []}
    methods = sorted(
        {p["method"] for p in pts} | set(ranking),
        key=lambda m: list(METHODS).index(m) if m in METHODS else 99,
    )
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.3))
    dmin = min(p["data_size"] for p in pts)
    dmax = max(max(p["data_size"] for p in pts), d_ans)
    for m in methods:
        colour = method_colour(m)
        mp = sorted((p for p in pts if p["method"] == m), key=lambda p: p["data_size"])
        labelled = False
        for held in (False, True):
            sel = [p for p in mp if p["heldout"] == held]
            if sel:
                ax.errorbar(
                    [p["data_size"] for p in sel],
                    [p["loss"] for p in sel],
                    yerr=[p["loss_std"] for p in sel],
                    fmt="o",
                    ms=4.5,
                    mfc="white" if held else colour,
                    color=colour,
                    capsize=2,
                    lw=0.8,
                    label=None if labelled else method_label(m),
                )
                labelled = True
        fit = fits.get(m)
        if fit is not None:
            model = law_from_record(fit)
            own = [p["data_size"] for p in doc["points"] if p["task"] == task and p["method"] == m]
            edge = max([p["data_size"] for p in mp if not p["heldout"]] or own)
            for lo, hi, ls in ((dmin, edge, "-"), (edge, dmax * 1.3, "--")):
                if hi > lo:
                    g = np.geomspace(lo, hi, 40)
                    ax.plot(g, model.predict(x, g), ls, color=colour, lw=1.2)
        r = ranking.get(m)
        if r and r.get("predicted_loss") is not None:
            iv = r.get("interval")
            if iv and iv[0] is not None:
                ax.plot([d_ans, d_ans], iv, color=colour, lw=4, alpha=0.35, solid_capstyle="butt")
            star = m == entry.get("best")
            ax.plot(
                d_ans, r["predicted_loss"], "*" if star else "_", ms=14 if star else 10,
                color=colour, mec="black" if star else colour, mew=0.6,
            )  # fmt: skip
    ax.axvline(d_ans, color="0.5", ls=":", lw=0.8)
    ax.set_xscale("log")
    _plain_log_ticks(ax, plt)
    ax.set_xlabel("finetuning data (examples)")
    ax.set_ylabel("test loss (nats/token)")
    who = entry.get("model") or fmt_value(x)
    ax.set_title(
        f"{task} on {who}: {_law_words(law, fits)}; star: the answer\n"
        "hollow = held out of the fit, dashed = extrapolation, bar = 95% interval",
        fontsize=8,
    )
    ax.legend(fontsize=7)
    return save_figure(fig, out / f"answer_{task}.png")
