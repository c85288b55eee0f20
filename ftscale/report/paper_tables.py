"""The report's tables and their sections: the paper's Tables 2-7 (fitted parameters, fit
quality, critical data sizes), compute-matched and PET-size choices, transfer rows
(:mod:`ftscale.report.build` puts them in order)."""

from __future__ import annotations

from typing import Any

from ftscale.laws.critical import format_h
from ftscale.laws.registry import LAWS
from ftscale.report import figures
from ftscale.report.forgetting import (
    forgetting_table,
)
from ftscale.report.sections import (
    Section,
    Table,
    Text,
)
from ftscale.report.summary import (
    correlation_table,
    critical_closed_form_table,
    delta_table,
    fmt_ci,
    joint_laws,
    params_table,
)
from ftscale.textfmt import fmt_interval, fmt_num

PARAM_ORDER = ("A", "alpha", "B", "beta", "E", "D_l")


def transfer_rows(results) -> list[dict[str, Any]]:
    """Transfer-evaluation rows from the runs' records (``transfer`` field), averaged over seeds,
    models and source languages: ``{"task", "method", "data_size", "shots", "bleu", "chrf",
    "loss"}``. The base models' rows have method ``"base"`` and data size 0."""
    import pandas as pd

    if results is None or "transfer" not in results:
        return []
    flat = []
    for _, run in results[results["status"] == "done"].iterrows():
        for t in run["transfer"] or []:
            for who in ("base", "finetuned"):
                vals = t.get(who) or {}
                flat.append(
                    {
                        "task": run["task"],
                        "method": "base" if who == "base" else run["method"],
                        # the base model is one model whatever the run's data size
                        "data_size": 0 if who == "base" else run["data_size"],
                        "shots": t["shots"],
                        "eval_task": t["task"],
                        **{k: vals.get(k) for k in ("bleu", "chrf", "loss")},
                    }
                )
    if not flat:
        return []
    df = pd.DataFrame(flat)
    g = df.groupby(["task", "method", "data_size", "shots"], as_index=False)[
        ["bleu", "chrf", "loss"]
    ].mean()
    return g.to_dict("records")


def _table(headers: list[str], rows: list[list[str]]) -> Table:
    """A table; its "task" column left out where every row has the same task (the answer
    names it)."""
    if headers and headers[0] == "task" and len({r[0] for r in rows}) == 1:
        return Table(headers[1:], [r[1:] for r in rows])
    return Table(headers, rows)


def _iv(iv: Any) -> str:
    return f" {fmt_interval(iv)}" if iv and iv[0] is not None else ""


def table_sections(doc: dict[str, Any], results, transfer, forget) -> list[Section]:
    """The paper's tables, folded, with units in the headers."""
    out = []
    pt = params_table(doc)
    if pt:
        names = [k for k in PARAM_ORDER if any(k in r for r in pt)]
        unit = {"E": "E (nats/token)", "D_l": "D_l (examples)"}
        rows = [
            [r["task"], figures.method_label(r["method"]), r["law"]]
            + [fmt_ci(r[k], r.get(f"{k}_ci")) if k in r else "" for k in names]
            + ["yes" if r["converged"] else "no"]
            for r in pt
        ]
        blocks: list = [
            _table(["task", "method", "law", *(unit.get(k, k) for k in names), "converged"], rows)
        ]
    else:
        blocks = [Text("No law could be fitted.")]
    out.append(Section("Fitted parameters (Table 4; 95% bootstrap intervals)", blocks))
    dt = delta_table(doc)
    if dt:
        laws = joint_laws(doc)
        rows = [
            [r["task"], figures.method_label(r["method"])]
            + [fmt_num(r.get(f"{law}_delta_{k}")) for law in laws for k in ("e", "h")]
            for r in dt
        ]
        heads = [f"{_short(law)} Δ{k}" for law in laws for k in ("e", "h")]
        out.append(
            Section(
                f"Fit quality: {' vs '.join(laws)} (Tables 2 and 6; nats/token)",
                [_table(["task", "method", *heads], rows)],
            )
        )
    out.append(critical_section(doc))
    ct = correlation_table(results)
    if ct:
        rows = [
            [r["task"], figures.method_label(r["method"]), r["metric"], f"{r['pearson']:.3f}"]
            + [str(r["n"])]
            for r in ct
        ]
        out.append(
            Section(
                "Test loss vs generation quality (Table 7: Pearson r across runs)",
                [_table(["task", "method", "metric", "r", "runs"], rows)],
            )
        )
    if transfer:
        rows = [
            [
                r["task"],
                figures.method_label(r["method"]),
                f"{r['data_size']:g}" if r["method"] != "base" else "-",
                str(r["shots"]),
                fmt_num(r.get("bleu")),
                fmt_num(r.get("chrf")),
                fmt_num(r.get("loss")),
            ]
            for r in transfer
        ]
        heads = ["data (examples)", "shots", "BLEU", "chrF", "loss (nats/token)"]
        out.append(
            Section(
                "Transfer to related tasks (mean over models, seeds and source languages)",
                [_table(["task", "method", *heads], rows)],
            )
        )
    if forget:
        heads, rows = forgetting_table(forget)
        seeds = sorted({int(p["n_seeds"]) for p in forget})
        out.append(
            Section(
                "Forgetting (change of loss on held-out general text; mean ± seed spread)",
                [
                    Text(
                        "Nats/token, by finetuning data size (examples); "
                        f"{'-'.join(map(str, (seeds[0], seeds[-1]) if len(seeds) > 1 else seeds))}"
                        " seeds per cell."
                    ),
                    _table(heads, rows),
                ],
            )
        )
    out += compute_sections(doc) + pet_size_sections(doc)
    for sec in out:
        sec.folded = True
    return out


def _short(law: str) -> str:
    """A law's short column name (its ``short`` attribute; the name for an unknown law)."""
    cls = LAWS.get(law)
    return cls.short if cls is not None else law


def critical_section(doc: dict[str, Any]) -> Section:
    """Table 5: the closed-form critical data size and the numeric first crossings."""
    title = "Critical finetuning data size (Table 5: D_c = H · X^γ, exact when E1 = E2)"
    cf = critical_closed_form_table(doc)
    if not cf:
        return Section(title, [Text("Fewer than two methods with a joint fit.")])
    rows = [
        [
            r["task"],
            r["pair"],
            format_h(r),
            fmt_num(r["gamma"]),
            "; ".join(
                f"{x:.3g}: {'none' if d is None else f'{d:.3g}'}" + ("*" if out else "")
                for (x, d), out in zip(
                    r["numeric"],
                    r.get("extrapolated") or [False] * len(r["numeric"]),
                    strict=True,
                )
            ),
        ]
        for r in cf
    ]
    heads = ["task", "methods", "H (examples)", "γ", "first crossing by factor value (examples)"]
    blocks: list = [_table(heads, rows)]
    if any(r["defined"] is False for r in cf):
        blocks.append(
            Text(
                "H undefined: the two methods' betas are equal within their 95% bootstrap "
                "intervals, so 1 / (β1 - β2), and with it D_c = H · X^γ, has no defined value in "
                "these runs."
            )
        )
    if any(any(r.get("extrapolated") or []) for r in cf):
        blocks.append(
            Text(
                "*: outside the data sizes both methods ran at that factor value "
                "(extrapolated beyond the runs)."
            )
        )
    return Section(title, blocks)


def compute_sections(doc: dict[str, Any]) -> list[Section]:
    """Critical training budgets (``critical_flops``): where two methods' losses cross when
    each gets the data its fitted cost model affords at the same FLOPs."""
    rows = []
    values = sorted({p["x"] for c in doc.get("critical_flops", []) for p in c["points"]})
    for c in doc.get("critical_flops", []):
        errs = ", ".join(
            f"{figures.method_label(m)} " + ("?" if cm["error"] is None else f"{cm['error']:.2g}")
            for m, cm in zip(c["methods"], c["cost_models"], strict=True)
        )
        cells = {
            p["x"]: (
                "none in range" if p["critical_budget"] is None else f"{p['critical_budget']:.3g}"
            )
            + (" (extrapolated beyond the runs)" if p.get("extrapolated") else "")
            for p in c["points"]
        }
        pair = " vs ".join(figures.method_label(m) for m in c["methods"])
        rows.append([c["task"], pair, *(cells.get(x, "") for x in values), errs])
    if not rows:
        return []
    return [
        Section(
            "Compute-matched choice (critical training FLOPs)",
            [
                Text(
                    "The training budget (FLOPs) at which the methods' predicted losses cross "
                    "when each trains on the data its fitted cost model affords, by factor value "
                    "(`ftscale critical --axis flops`). Cost-model error: RMS of the log "
                    "residuals."
                ),
                _table(
                    ["task", "methods", *(f"{x:.3g}" for x in values), "cost-model error"],
                    rows,
                ),
            ],
        )
    ]


def pet_size_sections(doc: dict[str, Any]) -> list[Section]:
    """The PET size to use per method (``pet_size_choice`` of a pet_size study)."""
    rows = []
    for c in doc.get("pet_size_choice", []):
        for m, ch in c["methods"].items():
            iv = ch.get("interval")
            rows.append(
                [
                    c["task"],
                    figures.method_label(m),
                    f"{c['data_size']:g}",
                    f"{ch['best']:g}",
                    f"{ch['smallest_within_tolerance']:g}",
                    fmt_num(ch.get("predicted_loss"))
                    + ("" if not iv else f" {fmt_interval(iv, fmt_num)}"),
                    f"{c['tolerance']:g}",
                ]
            )
    if not rows:
        return []
    return [
        Section(
            "PET size to use (LoRA rank / prompt length)",
            [
                Text(
                    "Among the sizes run: the one with the lowest predicted loss at the data "
                    "size, and the smallest within the tolerance of it (its predicted loss with "
                    "the 95% bootstrap interval). The scaling figure marks both."
                ),
                _table(
                    ["task", "method", "data (examples)", "best", "smallest within tolerance"]
                    + ["its loss (nats/token)", "tol. (nats/token)"],
                    rows,
                ),
            ],
        )
    ]
