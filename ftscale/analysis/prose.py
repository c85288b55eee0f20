"""The words of ``study fit``: labels of curves and fits, the health flags with their
messages, the answer as a sentence and the console summary (:func:`format_fits`). The numbers
come from :mod:`ftscale.analysis.study`; nothing here fits."""

from __future__ import annotations

from typing import Any

from ftscale.analysis.health import (
    FACTOR_WORD,
    curve_health,
    law_message,
    method_label,
    range_text,
    zero_shot_health,
)
from ftscale.textfmt import fmt_crossing, fmt_interval, fmt_size, fmt_value


def _word(factor: str) -> str:
    return FACTOR_WORD.get(factor, factor)


def _at(factor: str, x: float) -> str:
    return f"{_word(factor)} {fmt_value(x)}"


def curve_label(ident: dict[str, Any], factor: str) -> str:
    """A study curve in words: "ftlm-3/LoRA on translate-en-zh" (plus the factor value where the
    model does not name it)."""
    who = method_label(str(ident.get("method")))
    if ident.get("model") is not None:
        who = f"{ident['model']}/{who}"
    text = f"{who} on {ident.get('task')}"
    if factor != "model_size" or ident.get("model") is None:
        text += f" at {_at(factor, ident[factor])}" if factor in ident else ""
    return text


def fit_label(fit: dict[str, Any], factor: str) -> str:
    """A study fit in words: "LoRA on translate-en-de (multiplicative law)"."""
    g = fit["group"]
    at = f" at {_at(factor, g[factor])}" if factor in g else ""
    return f"{method_label(str(g.get('method')))} on {g.get('task')}{at} ({fit['law']} law)"


def health_of(
    fits: list[dict[str, Any]],
    points: list[dict[str, Any]],
    critical: list[dict[str, Any]],
    recommendations: list[dict[str, Any]],
    factor: str,
) -> dict[str, list[dict[str, Any]]]:
    """Every flag of a study's fits: ``{"curves", "laws", "critical", "flips"}``, each a list of
    records with a ``message`` in words (docs/laws.md, "Health checks"):

    - ``curves``: :func:`ftscale.analysis.health.curve_health` of each (task, method, model,
      factor value) curve of ``points``, and :func:`~ftscale.analysis.health.zero_shot_health`
      (``kind`` "zero_shot": finetuned test loss not below the base model's zero-shot loss);
    - ``laws``: fits whose ``health`` says they do not extrapolate (``task``, ``method``,
      ``law``, the factor value for one-factor fits, and the health fields);
    - ``critical``: critical data sizes outside either method's runs at their factor value
      (``task``, ``methods``, ``x``, ``critical_data_size``, ``measured_range``);
    - ``flips``: flips of the recommendations outside the runs of either of their two methods
      (``task``, the factor value, ``data_size``, ``from``, ``to``, ``measured_range``).
    """
    keys = ["task", "method", "model", "pet_size", factor]
    keys = list(dict.fromkeys(keys))  # factor may be pet_size
    describe = lambda ident: curve_label(ident, factor)  # noqa: E731
    curves = curve_health(points, keys, describe=describe)
    # finetuning that did not beat the base model: a flag on the curve, not a result
    curves += [
        {**z, "kind": "zero_shot"} for z in zero_shot_health(points, keys, describe=describe)
    ]
    laws = []
    for f in fits:
        h = f.get("health") or {}
        if h.get("extrapolates") is False:
            g = f["group"]
            laws.append(
                {
                    "task": g.get("task"),
                    "method": g.get("method"),
                    "law": f["law"],
                    **({factor: g[factor]} if factor in g else {}),
                    **h,
                    "message": law_message(fit_label(f, factor), h),
                }
            )
    crit = []
    for c in critical:
        for p in c["points"]:
            if p.get("extrapolated"):
                rng = p.get("measured_range")
                crit.append(
                    {
                        "task": c["task"],
                        "methods": c["methods"],
                        "law": c.get("law"),
                        "x": p["x"],
                        "critical_data_size": p["critical_data_size"],
                        "measured_range": rng,
                        "message": (
                            f"{c['task']}, {' vs '.join(method_label(m) for m in c['methods'])} "
                            f"at {_at(factor, p['x'])}: the critical data size "
                            f"{fmt_size(p['critical_data_size'])} examples is extrapolated "
                            f"beyond the runs (both methods ran {range_text(rng)}); run both "
                            "methods near it before relying on it"
                        ),
                    }
                )
    flips = []
    for rec in recommendations:
        for fl in rec.get("flips", []):
            if fl.get("extrapolated"):
                flips.append(
                    {
                        "task": rec["task"],
                        factor: rec[factor],
                        **{k: fl[k] for k in ("data_size", "from", "to", "measured_range")},
                        "message": _flip_message(rec["task"], factor, rec[factor], fl),
                    }
                )
    return {"curves": curves, "laws": laws, "critical": crit, "flips": flips}


def _flip_message(task: str, factor: str, x: float, fl: dict[str, Any]) -> str:
    return (
        f"{task} at {_at(factor, x)}: "
        + fmt_crossing(method_label(fl["from"]), method_label(fl["to"]), fl["data_size"])
        + f", extrapolated beyond the runs (both ran {range_text(fl.get('measured_range'))})"
    )


def answer_text(entry: dict[str, Any], factor: str) -> str:
    """One task's answer (:func:`answer_of`) as a sentence."""
    where = f"at {_at(factor, entry[factor])}"
    if entry.get("model"):
        where += f" ({entry['model']})"
    where += f" with {fmt_size(entry['data_size'])} examples"
    if entry["best"] is None:
        return (
            f"{entry['task']}: no answer {where}: fewer than two methods have a "
            f"{entry['law']} fit to compare."
        )
    if entry["p_best"] is None:
        certainty = "no bootstrap draws, so no certainty"
    else:
        drawn = entry.get("p_best_draws")
        certainty = (
            f"P(best) {entry['p_best']:.2f} over {entry['n_draws']} bootstrap draws of the laws"
            if drawn is None
            else f"P(best) at most {entry['p_best']:.2f} ({drawn:.2f} over "
            f"{entry['n_draws']} bootstrap draws of the laws, capped"
        )
        if entry.get("p_best_widened"):
            flagged = ", ".join(method_label(m) for m in entry["p_best_widened"])
            certainty += (
                f" (widened by the held-out error of {flagged}, whose law does not extrapolate)"
                if drawn is None
                else f": the law of {flagged} does not extrapolate, and its draws, widened by "
                "its held-out error, cannot say more)"
            )
        elif drawn is not None:
            certainty += ")"

    def loss(r: dict[str, Any]) -> str:
        iv = r.get("predictive_interval")
        text = f"{method_label(r['method'])} {r['predicted_loss']:.3f}"
        return text + (f" {fmt_interval(iv)}" if iv else "")

    losses = ", ".join(loss(r) for r in entry["ranking"])
    laws = entry.get("laws") or {}
    used = "; ".join(
        f"{method_label(m)}: {v['law']} law{_of_covariate(v['law'])}, cross-validated error "
        + ("-" if v.get("cv_error") is None else f"{v['cv_error']:.3f}")
        + ", held-out error "
        + ("-" if v.get("delta_h") is None else f"{v['delta_h']:.3f}")
        for m, v in laws.items()
    )
    n = len(entry["flags"])
    qualified = (
        "; no check qualifies it" if not n else f"; qualified by {n} flag{'s' if n > 1 else ''}"
    )
    return (
        f"{entry['task']}: {where}, use {method_label(entry['best'])} ({certainty}; predicted "
        f"test loss {losses} nats/token, 95% intervals of one run's loss; {used}){qualified}."
    )


def _crossings_text(points: list[dict[str, Any]], key: str) -> str:
    """``x: crossing`` per critical point (``key``: the crossing's field; "none" without one,
    "(extrapolated)" beyond the runs), comma-separated."""
    return ", ".join(
        f"{p['x']:.3g}: "
        + ("none" if p[key] is None else f"{p[key]:.3g}")
        + (" (extrapolated)" if p.get("extrapolated") else "")
        for p in points
    )


def format_fits(doc: dict[str, Any]) -> str:
    """A compact human-readable summary of :func:`fit_study`'s document."""
    lines = [f"study {doc['study']}: factor {doc['factor']}"]
    lines.append(f"{'task':18} {'method':7} {'law':26} {'params':58} {'Δe':>7} {'Δh':>7} {'cv':>7}")
    for f in doc["fits"]:
        g = f["group"]
        params = " ".join(f"{k}={v:.3g}" for k, v in f["params"].items())
        dh = "-" if f["delta_h"] is None else f"{f['delta_h']:.4f}"
        extra = (
            "" if f["factor"] is not None else f" @{doc['factor']}={g.get(doc['factor'], '?'):g}"
        )
        cv = "-" if f.get("cv_error") is None else f"{f['cv_error']:.4f}"
        lines.append(
            f"{g['task'][:18]:18} {g['method']:7} {(f['law'] + extra)[:26]:26} {params[:58]:58} "
            f"{f['delta_e']:7.4f} {dh:>7} {cv:>7}"
            + (" *" if f.get("chosen") else "")
            + ("" if f["converged"] else "  (not converged)")
        )
    for c in doc.get("critical", []):
        pts = _crossings_text(c["points"], "critical_data_size")
        lines.append(
            f"critical data size {c['methods'][0]} vs {c['methods'][1]} ({c['task']}) by {doc['factor']}: {pts}"
        )
    for c in doc.get("critical_flops", []):
        pts = _crossings_text(c["points"], "critical_budget")
        errs = "/".join(
            "?" if cm["error"] is None else f"{cm['error']:.2g}" for cm in c["cost_models"]
        )
        lines.append(
            f"critical {c['cost_column']} {c['methods'][0]} vs {c['methods'][1]} ({c['task']}) "
            f"by {doc['factor']}: {pts} (cost models' rms log error {errs})"
        )
    for c in doc.get("pet_size_choice", []):
        for m, ch in c["methods"].items():
            lines.append(
                f"pet size {method_label(m)} ({c['task']}) at {fmt_size(c['data_size'])} "
                f"examples: {ch['smallest_within_tolerance']:g}, the smallest within "
                f"{c['tolerance']:g} nats/token of the best ({ch['best']:g})"
            )
    for a in (doc.get("answer") or {}).get("tasks", []):
        lines.append(f"answer: {a['text']}")
        lines += [f"  - {f['message']}" for f in a["flags"]]
    health = doc.get("health") or {}
    flags = [
        r["message"] for k in ("curves", "laws", "critical", "flips") for r in health.get(k, [])
    ]
    lines += [f"health: {m}" for m in flags]
    if health and not flags:
        lines.append(
            "health: no flags (no curve rises with data beyond its seed spread, no law fails "
            "on its held-out points, no crossing or flip lies outside the runs)"
        )
    for n in doc.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def _of_covariate(law: str) -> str:
    """' (of each model's zero-shot loss)' for a covariate law (its factor is that
    measurement, not the model size), else ''."""
    from ftscale.laws.registry import LAWS

    words = getattr(LAWS.get(law), "covariate_words", None)
    return "" if words is None else f" (of each model's {words})"
