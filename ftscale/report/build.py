"""``build_report``: a study's report folder — report.md, a self-contained report.html (images
embedded), the PNG figures, the fits JSON and the results table."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from ftscale.fsutil import atomic_dir, atomic_write
from ftscale.jsonio import to_json_text
from ftscale.laws.critical import format_h
from ftscale.report import figures
from ftscale.report.forgetting import (
    forgetting_findings,
    forgetting_points,
    forgetting_table_rows,
    learn_forget_figure,
)
from ftscale.report.summary import (
    correlation_table,
    critical_closed_form_table,
    delta_table,
    findings,
    fmt_ci,
    params_table,
)

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


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render_markdown(
    doc: dict[str, Any], figs: list[Path], results, transfer: list[dict[str, Any]]
) -> str:
    """The report as Markdown (figures referenced by file name). It opens with the answer
    (:func:`answer_lines`) and lists every health flag under "Health"."""
    lines = [f"# Study report: {doc['study']}", ""]
    lines += answer_lines(doc)
    n_runs = 0 if results is None else len(results)
    n_done = 0 if results is None else int((results["status"] == "done").sum())
    lines += [
        f"Factor scaled with finetuning data: **{doc['factor']}**. The answer and every table "
        f"below rest on {n_done} finished runs of {n_runs} planned; {len(doc['points'])} points "
        "(seed means).",
        "",
        "## Findings",
        "",
    ]
    forget = forgetting_points(results)
    lines += [f"- {s}" for s in findings(doc, results) + forgetting_findings(forget)] + [""]
    lines += ["## Health", ""] + health_lines(doc)
    lines += ["## Figures", ""]
    for f in figs:
        lines += [f"![{f.stem}]({f.name})", ""]
    pt = params_table(doc)
    lines += ["## Fitted parameters (Table 4; 95% bootstrap intervals)", ""]
    if pt:
        names = [k for k in PARAM_ORDER if any(k in r for r in pt)]
        rows = [
            [r["task"], figures.method_label(r["method"]), r["law"]]
            + [fmt_ci(r[k], r.get(f"{k}_ci")) if k in r else "" for k in names]
            + ["yes" if r["converged"] else "no"]
            for r in pt
        ]
        lines += [_md_table(["task", "method", "law", *names, "converged"], rows), ""]
    else:
        lines += ["No law could be fitted.", ""]
    dt = delta_table(doc)
    lines += ["## Fit quality: multiplicative vs additive (Tables 2 and 6, nats/token)", ""]
    if dt:
        rows = [
            [
                r["task"],
                figures.method_label(r["method"]),
                *(
                    _fmt(r.get(f"{law}_delta_{k}"))
                    for law in ("multiplicative", "additive")
                    for k in ("e", "h")
                ),
            ]
            for r in dt
        ]
        lines += [_md_table(["task", "method", "mult Δe", "mult Δh", "add Δe", "add Δh"], rows), ""]
    cf = critical_closed_form_table(doc)
    lines += ["## Critical finetuning data size (Table 5: D_c = H · X^γ, exact when E1 = E2)", ""]
    if cf:
        rows = [
            [
                r["task"],
                r["pair"],
                format_h(r),
                _fmt(r["gamma"]),
                "; ".join(
                    f"{x:.3g}: {'none' if d is None else f'{d:.3g}'}"
                    + (" (extrapolated)" if out else "")
                    for (x, d), out in zip(
                        r["numeric"],
                        r.get("extrapolated") or [False] * len(r["numeric"]),
                        strict=True,
                    )
                ),
            ]
            for r in cf
        ]
        lines += [
            _md_table(
                ["task", "methods", "H", "γ", "numeric first crossing by factor value"], rows
            ),
            "",
        ]
        if any(r["defined"] is False for r in cf):
            lines += [
                "H undefined: the two methods' betas are equal within their 95% bootstrap "
                "intervals, so 1 / (β1 - β2), and with it D_c = H · X^γ, has no defined value in "
                "these runs.",
                "",
            ]
        if any(any(r.get("extrapolated") or []) for r in cf):
            lines += [
                "(extrapolated): the crossing lies outside the data sizes that both methods ran at "
                "that factor value: extrapolated beyond the runs.",
                "",
            ]
    else:
        lines += ["Fewer than two methods with a multiplicative fit: no critical sizes.", ""]
    ct = correlation_table(results)
    lines += ["## Test loss vs generation quality (Table 7: Pearson r across runs)", ""]
    if ct:
        rows = [
            [
                r["task"],
                figures.method_label(r["method"]),
                r["metric"],
                f"{r['pearson']:.3f}",
                str(r["n"]),
            ]
            for r in ct
        ]
        lines += [_md_table(["task", "method", "metric", "r", "runs"], rows), ""]
    else:
        lines += ["No runs with generation metrics.", ""]
    lines += ["## Transfer to related tasks (mean over models, seeds and source languages)", ""]
    if transfer:
        rows = [
            [
                r["task"],
                figures.method_label(r["method"]),
                f"{r['data_size']:g}" if r["method"] != "base" else "-",
                str(r["shots"]),
                _fmt(r.get("bleu")),
                _fmt(r.get("chrf")),
                _fmt(r.get("loss")),
            ]
            for r in transfer
        ]
        lines += [_md_table(["task", "method", "data", "shots", "BLEU", "chrF", "loss"], rows), ""]
    else:
        lines += ["No transfer evaluation in this study.", ""]
    lines += [
        "## Forgetting (change of loss on held-out general text, nats/token; mean ± seed spread)",
        "",
    ]
    if forget:
        lines += [
            _md_table(
                ["task", "method", "model", "data", "forgetting", "test loss", "seeds"],
                forgetting_table_rows(forget),
            ),
            "",
        ]
    else:
        lines += ["No run measured forgetting (forget_examples = 0).", ""]
    lines += compute_lines(doc) + pet_size_lines(doc)
    return "\n".join(lines) + "\n"


def compute_lines(doc: dict[str, Any]) -> list[str]:
    """Critical training budgets (``critical_flops``): where two methods' losses cross when
    each gets the data its fitted cost model affords at the same FLOPs."""
    rows = []
    for c in doc.get("critical_flops", []):
        errs = ", ".join(
            f"{figures.method_label(m)} " + ("?" if cm["error"] is None else f"{cm['error']:.2g}")
            for m, cm in zip(c["methods"], c["cost_models"], strict=True)
        )
        for p in c["points"]:
            b = p["critical_budget"]
            rows.append(
                [
                    c["task"],
                    f"{figures.method_label(c['methods'][0])} vs {figures.method_label(c['methods'][1])}",
                    f"{p['x']:.3g}",
                    ("none in range" if b is None else f"{b:.3g}")
                    + (" (extrapolated beyond the runs)" if p.get("extrapolated") else ""),
                    errs,
                ]
            )
    if not rows:
        return []
    return [
        "## Compute-matched choice (critical training FLOPs)",
        "",
        "At a training budget of F FLOPs each method trains on the data its fitted cost model "
        "(cost = exp(c0) X^c1 D^c2, from the runs' `flops`) affords; the budget where the "
        "methods' predicted losses cross (`ftscale recommend --budget-flops F`, `ftscale "
        "critical --axis flops`). Cost-model error: RMS of the log residuals.",
        "",
        _md_table(["task", "methods", "factor value", "critical FLOPs", "cost-model error"], rows),
        "",
    ]


def pet_size_lines(doc: dict[str, Any]) -> list[str]:
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
                    _fmt(ch.get("predicted_loss"))
                    + ("" if not iv else f" [{_fmt(iv[0])}, {_fmt(iv[1])}]"),
                    f"{c['tolerance']:g}",
                ]
            )
    if not rows:
        return []
    return [
        "## PET size to use (LoRA rank / prompt length)",
        "",
        "Among the sizes run: the one with the lowest predicted loss at the data size, and the "
        "smallest within the tolerance of it (its predicted loss with the 95% bootstrap "
        "interval). The scaling figure marks both.",
        "",
        _md_table(
            ["task", "method", "data", "best", "smallest within tolerance", "its loss", "tol."],
            rows,
        ),
        "",
    ]


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.4g}"


def answer_lines(doc: dict[str, Any]) -> list[str]:
    """The report's opening: per task, the recommended method at the largest factor value and
    data size with its certainty (:func:`ftscale.analysis.study.answer_of`), and the flags that
    qualify it as a list."""
    tasks = (doc.get("answer") or {}).get("tasks") or []
    if not tasks:
        return []
    out = []
    for a in tasks:
        out += [f"**Answer.** {a['text']}", ""]
        out += [f"- {f['message']}" for f in a["flags"]]
        if a["flags"]:
            out.append("")
    return out


def health_lines(doc: dict[str, Any]) -> list[str]:
    """Every health flag of the fits (curves that rise with data, laws that do not extrapolate,
    crossings and flips beyond the runs) and of the answer (data sizes outside the runs), one
    item each, in words a user acts on."""
    health = doc.get("health") or {}
    msgs = [
        r["message"] for k in ("curves", "laws", "critical", "flips") for r in health.get(k, [])
    ]
    for a in (doc.get("answer") or {}).get("tasks") or []:
        msgs += [f["message"] for f in a["flags"] if f["kind"] == "data_size"]
    if not msgs:
        return [
            "No flags: no curve rises with data by more than its seed spread, no law misses its "
            "held-out points, and no critical data size or change of the best method lies "
            'outside the runs (definitions: docs/laws.md, "Health checks").',
            "",
        ]
    return [f"- {m}" for m in dict.fromkeys(msgs)] + [""]


def render_html(markdown: str, folder: Path) -> str:
    """A self-contained HTML page from the report's Markdown: tables, lists, headings and the
    figures embedded as base64 PNG."""
    body: list[str] = []
    in_list = False
    table: list[str] = []

    def flush_table() -> None:
        if not table:
            return
        head = [c.strip() for c in table[0].strip("|").split("|")]
        body.append(
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(c)}</th>" for c in head)
            + "</tr></thead><tbody>"
        )
        for row in table[2:]:
            cells = [c.strip() for c in row.strip("|").split("|")]
            body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        body.append("</tbody></table>")
        table.clear()

    def inline(text: str) -> str:
        text = html.escape(text)
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush_table()
        if line.startswith("- "):
            if not in_list:
                body.append("<ul>")
                in_list = True
            body.append(f"<li>{inline(line[2:])}</li>")
            continue
        if in_list:
            body.append("</ul>")
            in_list = False
        m = re.match(r"!\[(.*?)\]\((.+?)\)", line)
        if m:
            data = base64.b64encode((folder / m.group(2)).read_bytes()).decode()
            body.append(
                f'<figure><img alt="{html.escape(m.group(1))}" src="data:image/png;base64,{data}"></figure>'
            )
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush_table()
    if in_list:
        body.append("</ul>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%}figure{margin:1em 0}li{margin:0.3em 0}"
    )
    title = html.escape(markdown.splitlines()[0].lstrip("# "))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def build_report(
    study,
    store,
    out_dir: str | Path,
    doc: dict[str, Any] | None = None,
    data_hashes: dict[str, str] | None = None,
) -> Path:
    """Fit ``study`` from ``store`` (unless ``doc`` is given) and write its report folder.

    Returns the folder. Raises UserError for a study without any finished run.
    """
    from ftscale.analysis.study import fit_study
    from ftscale.study.plan import plan_study
    from ftscale.study.results import results_frame

    if doc is None:
        doc = fit_study(study, store, data_hashes)
    keys = [r.run_key for r in plan_study(study, data_hashes)]
    results = results_frame(store, keys)
    # Keep records' transfer lists (not a results-table column) for the transfer figure.
    transfer_lists = {r.run_key: (r.record or {}).get("transfer") for r in store.runs(keys)}
    results["transfer"] = results["run_key"].map(transfer_lists)
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, kind="report", owned=_legacy_report_file) as tmp:
        figs: list[Path] = []
        tasks = sorted({p["task"] for p in doc["points"]})
        transfer = transfer_rows(results)
        for task in tasks:
            for maker in (figures.scaling_figure, figures.critical_figure):
                p = maker(doc, task, tmp)
                if p is not None:
                    figs.append(p)
            p = figures.transfer_figure(transfer, task, tmp)
            if p is not None:
                figs.append(p)
            p = learn_forget_figure(forgetting_points(results), task, tmp)
            if p is not None:
                figs.append(p)
        md = render_markdown(doc, figs, results, transfer)
        with atomic_write(tmp / "report.md") as fh:
            fh.write(md)
        with atomic_write(tmp / "report.html") as fh:
            fh.write(render_html(md, tmp))
        with atomic_write(tmp / "fits.json") as fh:
            fh.write(to_json_text(doc))
        results.drop(columns=["transfer"]).to_csv(tmp / "results.csv", index=False)
    return out_dir


def _legacy_report_file(entry: Path) -> bool:
    """A file that a report folder written before the output marker existed holds."""
    return entry.is_file() and (
        entry.name in ("report.md", "report.html", "fits.json", "results.csv")
        or entry.suffix == ".png"
    )
