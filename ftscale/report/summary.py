"""The report's tables and findings, computed from a study's fits document and results table.

Tables (the paper's numbering): fitted parameters with bootstrap intervals (Table 4), Delta_e and
Delta_h of every fitted joint law side by side (Tables 2 and 6), the closed-form
critical size H and gamma (Table 5), and the correlation between test loss and generation quality
across runs (Table 7). Findings are sentences computed from those numbers, never fixed text; a
finding that compares exponents or methods is stated only where their 95% bootstrap intervals
separate, and the health checks (:mod:`ftscale.analysis.health`) are listed in words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftscale.analysis.health import FACTOR_WORD, intervals_separate
from ftscale.laws.critical import DEFAULT_RANGE
from ftscale.report.figures import chosen_fits, method_label
from ftscale.textfmt import fmt_ci, fmt_value

_FACTOR_WORD = FACTOR_WORD
#: How a finding says that its comparison has no intervals.
NO_INTERVALS = "the fits have no bootstrap intervals, so the comparison has no intervals (fit with bootstrap > 0)"


def params_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per joint fit: parameters with 95% bootstrap intervals (Table 4)."""
    rows = []
    for f in doc["fits"]:
        if f["factor"] is None:
            continue
        row = {"task": f["group"]["task"], "method": f["group"]["method"], "law": f["law"]}
        for k, v in f["params"].items():
            ci = f["ci"].get(k)
            row[k] = v
            row[f"{k}_ci"] = ci
        row["converged"] = f["converged"]
        rows.append(row)
    return rows


def joint_laws(doc: dict[str, Any]) -> list[str]:
    """The laws fitted with a factor (joint laws), in the order the fits list them."""
    return list(dict.fromkeys(f["law"] for f in doc["fits"] if f["factor"] is not None))


def delta_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Delta_e and Delta_h (nats/token) per (task, method) for every joint law
    (:func:`joint_laws`): keys ``{law}_delta_e`` and ``{law}_delta_h``."""
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for f in doc["fits"]:
        if f["factor"] is None:
            continue
        key = (f["group"]["task"], f["group"]["method"])
        row = by.setdefault(key, {"task": key[0], "method": key[1]})
        row[f"{f['law']}_delta_e"] = f["delta_e"]
        row[f"{f['law']}_delta_h"] = f["delta_h"]
    return [by[k] for k in sorted(by)]


def critical_closed_form_table(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """H and gamma of D_c = H * X^gamma per method pair (Table 5), with the numeric first
    crossing at each factor value for comparison."""
    rows = []
    for c in doc.get("critical", []):
        cf = c.get("closed_form") or {}
        rows.append(
            {
                "task": c["task"],
                "pair": f"{method_label(c['methods'][0])} vs {method_label(c['methods'][1])}",
                "H": cf.get("H"),
                "log10_H": cf.get("log10_H"),
                "gamma": cf.get("gamma"),
                "defined": cf.get(
                    "defined", cf.get("H") is not None or cf.get("log10_H") is not None
                ),
                "why": cf.get("why"),
                "numeric": [(p["x"], p["critical_data_size"]) for p in c["points"]],
                "extrapolated": [bool(p.get("extrapolated")) for p in c["points"]],
            }
        )
    return rows


def correlation_table(results) -> list[dict[str, Any]]:
    """Pearson correlation between test loss and each generation metric across finished runs
    (Table 7), per task and method, where at least 3 runs have both."""
    rows = []
    if results is None or len(results) == 0:
        return rows
    done = results[results["status"] == "done"]
    for metric in ("bleu", "chrf", "rougeL", "exact_match"):
        if metric not in done:
            continue
        for (task, method), g in done.groupby(["task", "method"]):
            sub = g[["loss", metric]].dropna().astype(float)
            if len(sub) < 3 or sub[metric].std() == 0 or sub["loss"].std() == 0:
                continue
            r = float(np.corrcoef(sub["loss"], sub[metric])[0, 1])
            rows.append(
                {"task": task, "method": method, "metric": metric, "pearson": r, "n": len(sub)}
            )
    return rows


def floor_vanishes(fit: dict[str, Any], points: list[dict[str, Any]]) -> bool:
    """Whether a fitted law's floor E came out ~0: under 1% of the lowest loss (nats/token) its
    (task, method) reached. The runs then show no floor; the law is a pure power law that
    extrapolates without one, and its E says nothing about the irreducible loss."""
    e = fit["params"].get("E")
    group = fit["group"]
    own = [
        p["loss"]
        for p in points
        if p["task"] == group.get("task") and p["method"] == group.get("method")
    ]
    return e is not None and bool(own) and not fit.get("at_bound") and e < 0.01 * min(own)


def findings(doc: dict[str, Any], results=None) -> list[str]:
    """Plain sentences computed from the fits."""
    out: list[str] = []
    factor = doc["factor"]
    word = _FACTOR_WORD.get(factor, factor)
    chosen = chosen_fits(doc)
    laws = joint_laws(doc)
    tasks = sorted({t for t, _ in chosen} | {p["task"] for p in doc["points"]})
    for task in tasks:
        tm = {m: f for (t, m), f in chosen.items() if t == task}
        if not tm:
            out.append(f"{task}: no law could be fitted (too few finished runs).")
            continue
        # Which scaling helps more: the factor's exponent against the data exponent.
        for m, f in sorted(tm.items()):
            if not {"alpha", "beta"} <= set(f["params"]) or f.get("covariate"):
                # a law without the two exponents says nothing here, nor a covariate law's
                # alpha (an exponent of the zero-shot loss, not of the factor)
                continue
            a, b = f["params"]["alpha"], f["params"]["beta"]
            ci = f.get("ci") or {}
            if f.get("at_bound"):
                # A parameter at the edge of the search box: the data do not pin the law down
                # (typically the factor barely moves the loss), so its exponents say nothing.
                out.append(
                    f"{task}, {method_label(m)}: the fit ran to the edge of its search range "
                    f"({', '.join(f['at_bound'])}); these runs do not identify the law, so its "
                    f"exponents (alpha = {a:.3g}, beta = {b:.3g}) are not meaningful."
                )
                continue
            if factor == "pet_size":
                verdict = "barely matters" if abs(a) < 0.01 else "matters"
                out.append(
                    f"{task}, {method_label(m)}: PET size {verdict} (alpha_t = {a:.4f}; beta = {b:.3f})."
                )
                continue
            exps = (
                f"alpha {fmt_ci(a, ci.get('alpha'), '.3f')} ({word}), "
                f"beta {fmt_ci(b, ci.get('beta'), '.3f')} (data)"
            )
            apart = intervals_separate(ci.get("alpha"), ci.get("beta"))
            if apart is None:
                out.append(f"{task}, {method_label(m)}: {exps}; {NO_INTERVALS}.")
            elif apart:
                more = word if a > b else "finetuning data"
                out.append(
                    f"{task}, {method_label(m)}: scaling {more} lowers the loss faster ({exps})."
                )
            else:
                out.append(f"{task}, {method_label(m)}: {exps} are not distinguishable.")
        # Data hunger: the largest beta, where its interval lies above every other method's.
        hungry = {m: f for m, f in tm.items() if "beta" in f["params"]}
        if len(hungry) > 1:
            out.append(_data_hunger(task, hungry))
        out += _law_comparisons(doc, task, laws)
    # Which method wins from which data size.
    for rec in doc.get("recommendations", []):
        x = rec.get(factor)
        flips = rec.get("flips", [])
        lo, hi = rec.get("flip_range") or DEFAULT_RANGE
        where = f"{rec['task']} at {word} {fmt_value(x)}"
        if not flips:
            out.append(
                f"{where}: {method_label(rec['best'])} is predicted best at every data size from "
                f"{lo:.3g} to {hi:.3g} examples."
            )
        else:
            parts = [
                f"{method_label(fl['from'])} until ~{fl['data_size']:.3g} examples, then "
                f"{method_label(fl['to'])}" + (" (extrapolated)" if fl.get("extrapolated") else "")
                for fl in flips
            ]
            out.append(f"{where}: " + "; ".join(parts) + ".")
    for note in doc.get("notes", []):
        out.append(f"Note: {note}")
    return out


def _law_comparisons(doc: dict[str, Any], task: str, laws: list[str]) -> list[str]:
    """Law comparison on held-out points: the first joint law listed against each other one,
    per method of ``task`` where both have a held-out Delta_h."""
    fits = {
        (f["law"], f["group"]["method"]): f
        for f in doc["fits"]
        if f["factor"] and f["group"]["task"] == task and f["delta_h"] is not None
    }
    out = []
    first = laws[0] if laws else None
    for other in laws[1:]:
        both = [
            (m, f["delta_h"], fits[(other, m)]["delta_h"])
            for (law, m), f in fits.items()
            if law == first and (other, m) in fits
        ]
        if both:
            wins = sum(1 for _, d1, d2 in both if d1 <= d2)
            out.append(
                f"{task}: the {first} law extrapolates at least as well as the {other} law for "
                f"{wins} of {len(both)} methods (held-out Delta_h: "
                + ", ".join(f"{method_label(m)} {d1:.4f} vs {d2:.4f}" for m, d1, d2 in both)
                + ")."
            )
    return out


def fit_cautions(doc: dict[str, Any]) -> list[str]:
    """Fits to read with care (each method's chosen law): a floor E that came out ~0, a fit
    that did not converge."""
    out = []
    for f in chosen_fits(doc).values():
        if not f["factor"]:
            continue
        task, m = f["group"]["task"], f["group"]["method"]
        if floor_vanishes(f, doc["points"]):
            out.append(
                f"{task}, {method_label(m)}: the fitted floor E is ~0 ({f['params']['E']:.2g} "
                "nats/token): these runs show no floor, so the law extrapolates as a pure power "
                "law and its E says nothing about the irreducible loss."
            )
        if not f["converged"]:
            out.append(
                f"{task}, {method_label(m)}: the fit did not converge; treat its parameters "
                "with caution."
            )
    return out


def _data_hunger(task: str, fits: dict[str, dict[str, Any]]) -> str:
    """Which method is the most data-hungry (largest beta), said only where its 95% interval
    lies above every other method's; else the betas are not distinguishable."""
    beta = {m: f["params"]["beta"] for m, f in fits.items()}
    ci = {m: (f.get("ci") or {}).get("beta") for m, f in fits.items()}
    hungry = max(beta, key=beta.get)
    listed = ", ".join(f"{method_label(m)} {fmt_ci(beta[m], ci[m], '.3f')}" for m in sorted(fits))
    if any(intervals_separate(ci[hungry], ci[m]) is None for m in fits if m != hungry):
        return (
            f"{task}: {method_label(hungry)} has the largest data exponent beta ({listed}); "
            f"{NO_INTERVALS}."
        )
    if all(intervals_separate(ci[hungry], ci[m]) for m in fits if m != hungry):
        return (
            f"{task}: {method_label(hungry)} is the most data-hungry method (largest beta; "
            f"{listed})."
        )
    return (
        f"{task}: the methods' data exponents beta ({listed}) are not distinguishable in these "
        "runs."
    )
