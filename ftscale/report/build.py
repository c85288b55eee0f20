"""``build_report``: a study's report folder — report.md, a self-contained report.html (images
embedded), the PNG figures, the fits JSON and the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftscale.analysis.health import FACTOR_WORD, method_label
from ftscale.fsutil import atomic_dir, atomic_write
from ftscale.jsonio import to_json_text
from ftscale.report import figures
from ftscale.report.forgetting import (
    forgetting_findings,
    forgetting_points,
    learn_forget_figure,
)
from ftscale.report.live import answer_facts
from ftscale.report.paper_tables import (
    _iv,
    table_sections,
    transfer_rows,
)
from ftscale.report.sections import (
    Bullets,
    Figure,
    Heading,
    Section,
    Table,
    Text,
    to_html,
    to_markdown,
)
from ftscale.report.summary import (
    findings,
    fit_cautions,
)
from ftscale.textfmt import fmt_num, fmt_size, fmt_value


def answer_section(doc: dict[str, Any], results, next_runs: dict[str, Any] | None) -> list[Section]:
    """The first screen: per task the recommendation (method, model, data size, predicted
    loss with its interval, P(best)) and what it rests on (runs, law, held-out error)."""
    facts = answer_facts(doc)
    n_runs = 0 if results is None else len(results)
    n_done = 0 if results is None else int((results["status"] == "done").sum())
    n_held = sum(1 for p in doc["points"] if p.get("heldout"))
    blocks: list = []
    for a in facts:
        if not a["best"]:
            blocks.append(Text(a["text"] or "no answer", lead=f"{a['task']}:"))
            continue
        where = a["model"] or fmt_value(a["factor_value"])
        p = "no bootstrap draws" if a["p_best"] is None else f"P(best) {a['p_best']:.2f}"
        loss = "" if a["predicted_loss"] is None else f"{a['predicted_loss']:.3f}"
        blocks.append(
            Text(
                f"on {where} with {fmt_size(a['data_size'])} examples: predicted test loss "
                f"{loss}{_iv(a['interval'])} nats/token (95% interval), {p}"
                + (f" over {a['n_draws']} draws." if a.get("n_draws") else "."),
                lead=f"{a['task']}: use {a['best_label']}",
            )
        )
        others = [
            f"{method_label(r['method'])} {r['predicted_loss']:.3f}{_iv(r.get('interval'))}"
            for r in a["ranking"]
            if r.get("method") != a["best"] and r.get("predicted_loss") is not None
        ]
        if others:
            blocks.append(Text("; ".join(others) + " nats/token.", lead="Others there:"))
        errs = {
            f["group"]["method"]: f.get("delta_h")
            for f in doc["fits"]
            if f["law"] == a["law"] and f["group"].get("task") == a["task"] and f["factor"]
        }
        held = ", ".join(
            f"{method_label(m)} {v:.3f}" for m, v in sorted(errs.items()) if v is not None
        )
        blocks.append(
            Text(
                f"{n_done} finished runs of {n_runs} planned ({len(doc['points'])} points, seed "
                f"means); the {a['law']} law per method, "
                + (
                    f"fitted without {n_held} held-out points"
                    if n_held
                    else "fitted to every point"
                )
                + (f" and scored on them: error {held} nats/token." if held else ".")
                + (f" {len(a['flags'])} flags qualify it (below)." if a["flags"] else ""),
                lead="Rests on:",
            )
        )
    if not facts:
        blocks.append(Text("No answer: no law could be fitted to these runs."))
    one = len({p[doc["factor"]] for p in doc["points"]}) == 1  # a study of one model
    scaled = "data size scaled, one model" if one else f"{doc['factor'].replace('_', ' ')} scaled"
    return [Section(f"Answer ({scaled})", blocks, key="answer")]


def next_runs_section(next_runs: dict[str, Any] | None) -> Section:
    """The top suggestions of ``study suggest`` with their cost."""
    sec = Section("What to run next", key="next")
    if next_runs is None:
        sec.blocks.append(Text("No suggestion: the study could not be fitted for one."))
        return sec
    rows = next_runs.get("suggestions") or []
    if not rows:
        why = (
            "every planned run has finished. To sharpen the answer, add data sizes or seeds "
            "where the flags point and run again."
            if next_runs.get("mode") == "exhausted"
            else "no unfinished run is expected to sharpen the answer."
        )
        sec.blocks.append(Text(why, lead="Nothing left to suggest:"))
        return sec
    unit = "core-s" if next_runs.get("cost_units") == "core-seconds" else "relative"
    sec.blocks.append(
        Table(
            ["method", "model", "data (examples)", "seed", f"cost ({unit})", "P(not best) after"],
            [
                [
                    method_label(r["method"]),
                    str(r["model"]),
                    f"{r['data_size']:g}",
                    str(r["seed"]),
                    f"{r['cost']:.3g}",
                    fmt_num(r.get("expected_uncertainty")),
                ]
                for r in rows
            ],
        )
    )
    sec.blocks.append(Text(f"`ftscale study suggest` ({next_runs.get('question', '')})."))
    return sec


#: What the user should do about each kind of flag, said once per kind.
FLAG_ACTIONS = {
    "extrapolated": "Beyond the runs: run the methods near these data sizes before relying on "
    "them.",
    "law": "Laws that miss their held-out points: their predictions beyond the fitted runs are "
    "not reliable. Check the held-out runs, add runs between the fitted and held-out sizes, or "
    "compare another law.",
    "curve": "Curves that rise with data: check these runs' learning rate and steps.",
    "caution": "Fits to read with care.",
}


def _range(rng: Any) -> str:
    return f"{rng[0]:g}-{rng[1]:g}" if rng else "-"


def flag_tables(doc: dict[str, Any]) -> dict[str, Table | Bullets]:
    """Every flag of the answer, the health checks and the fits, once, grouped by what to do
    (:data:`FLAG_ACTIONS`): the extrapolations and the laws as tables of their numbers, the
    rest as their messages. A record without the expected fields is shown by its message."""
    factor = doc["factor"]
    health = doc.get("health") or {}
    at = f"{FACTOR_WORD.get(factor, factor)}"
    extra: dict[tuple, list] = {}
    loose: dict[str, list[str]] = {k: [] for k in FLAG_ACTIONS}

    def add(key: tuple, what: str, x: float, d: str, rng: Any) -> None:
        row = extra.setdefault(key, [what, [], _range(rng)])
        row[1].append(f"{fmt_value(x)}: {d}")

    for a in (doc.get("answer") or {}).get("tasks") or []:
        ranking = {r.get("method"): r for r in a.get("ranking") or []}
        for f in a.get("flags") or []:
            r = ranking.get(f.get("method"))
            if f.get("kind") == "data_size" and r is not None and a.get(factor) is not None:
                m = method_label(f["method"])
                add(("loss", a["task"], m), f"{m}'s loss in the answer", a[factor],
                    fmt_size(a["data_size"]), r.get("measured_range"))  # fmt: skip
            elif f.get("kind") not in ("flip", "data_size", "law", "curve"):
                # flips, laws and curves: from the health lists below
                loose.setdefault(f.get("kind", "caution"), []).append(f["message"])
    for c in health.get("critical", []):
        try:
            pair = " vs ".join(method_label(m) for m in c["methods"])
            add(("crit", c["task"], pair), f"critical size {pair}", c["x"],
                fmt_size(c["critical_data_size"]), c.get("measured_range"))  # fmt: skip
        except (KeyError, TypeError):
            loose["extrapolated"].append(c["message"])
    for fl in health.get("flips", []):
        try:
            pair = f"{method_label(fl['from'])} -> {method_label(fl['to'])}"
            add(("flip", fl["task"], pair), f"best method {pair}", fl[factor],
                "~" + fmt_size(fl["data_size"]), fl.get("measured_range"))  # fmt: skip
        except (KeyError, TypeError):
            loose["extrapolated"].append(fl["message"])
    laws = []
    one_task = len({p["task"] for p in doc["points"]}) == 1
    for r in health.get("laws", []):
        if r.get("delta_h") is None:
            loose["law"].append(r["message"])
            continue
        laws.append(
            [
                method_label(r["method"]) + ("" if one_task else f" ({r['task']})"),
                str(r.get("law")) + (f" at {fmt_value(r[factor])}" if r.get(factor) else ""),
                fmt_num(r.get("delta_h")),
                fmt_num(r.get("delta_e")),
                fmt_num(r.get("noise")),
            ]
        )
    loose["curve"] += [r["message"] for r in health.get("curves", [])]
    loose["caution"] += fit_cautions(doc)
    out: dict[str, Table | Bullets] = {}
    if extra:
        heads = ["what", f"{at}: data (examples)", "runs cover (examples)"]
        rows = [[what, "; ".join(xs), rng] for what, xs, rng in extra.values()]
        out["extrapolated"] = Table(heads, rows)
    if laws:
        heads = ["method", "law", "held-out Δh", "fit Δe", "expected noise (nats/token)"]
        out["law"] = Table(heads, laws)
    for k, msgs in loose.items():
        if msgs:
            have = out.get(k)
            items = list(dict.fromkeys(msgs))
            out[k if have is None else f"{k}:more"] = Bullets(items)
    return out


def flags_section(doc: dict[str, Any]) -> Section:
    groups = flag_tables(doc)
    sec = Section("What to do about the flags", key="flags")
    if not groups:
        sec.blocks.append(
            Text(
                "no curve rises with data beyond its seed spread, no law misses its held-out "
                "points, and no crossing or change of the best method lies outside the runs "
                '(docs/laws.md, "Health checks").',
                lead="No flags:",
            )
        )
    for k, block in groups.items():
        action = FLAG_ACTIONS.get(k.split(":")[0], "")
        if action and not k.endswith(":more"):
            sec.blocks.append(Text(action))
        sec.blocks.append(block)
    return sec


def report_sections(
    doc: dict[str, Any],
    figs: list[Path],
    results,
    transfer: list[dict[str, Any]],
    next_runs: dict[str, Any] | None = None,
    answer_figs: list[Path] | None = None,
) -> list[Section]:
    """The report, top to bottom: the answer; its figure beside what to run next and what to
    do about the flags (the first screen); then, folded, the findings, the other figures and
    the paper's tables."""
    forget = forgetting_points(results)
    first = answer_section(doc, results, next_runs)
    side = Section("", [Figure(p, p.stem) for p in answer_figs or []], key="answer-figure")
    found = findings(doc, results) + forgetting_findings(forget)
    rest = [
        Section("Findings", [Bullets(found)] if found else [Text("None.")], folded=True),
        Section("Figures", [Figure(p, p.stem) for p in figs], folded=True, key="figures"),
        *table_sections(doc, results, transfer, forget),
    ]
    nxt, flags = next_runs_section(next_runs), flags_section(doc)
    todo = Section(
        "", [Heading(nxt.title), *nxt.blocks, Heading(flags.title), *flags.blocks], key="todo"
    )
    return [*first, side, todo, *rest]


def report_title(doc: dict[str, Any]) -> str:
    return f"Study report: {doc['study']}"


def render_markdown(sections: list[Section], title: str) -> str:
    """The sections (:func:`report_sections`) as Markdown, figures referenced by file name."""
    return to_markdown(title, sections)


def render_html(sections: list[Section], title: str, folder: Path) -> str:
    """The same sections as one self-contained page (figures embedded)."""
    return to_html(title, sections, folder, first=2)


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
        answer_figs: list[Path] = []
        tasks = sorted({p["task"] for p in doc["points"]})
        transfer = transfer_rows(results)
        for task in tasks:
            p = figures.answer_figure(doc, task, tmp)
            if p is not None:
                answer_figs.append(p)
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
        next_runs = suggest_next(study, store, doc, data_hashes)
        sections = report_sections(doc, figs, results, transfer, next_runs, answer_figs)
        with atomic_write(tmp / "report.md") as fh:
            fh.write(render_markdown(sections, report_title(doc)))
        with atomic_write(tmp / "report.html") as fh:
            fh.write(render_html(sections, report_title(doc), tmp))
        with atomic_write(tmp / "fits.json") as fh:
            fh.write(to_json_text(doc))
        results.drop(columns=["transfer"]).to_csv(tmp / "results.csv", index=False)
    return out_dir


def suggest_next(
    study, store, doc: dict[str, Any], data_hashes: dict[str, str] | None = None, n: int = 3
) -> dict[str, Any] | None:
    """``study suggest``'s top ``n`` runs for the default question (None where it has no
    answer for these runs: a study it cannot read a question from)."""
    from ftscale.errors import UserError
    from ftscale.study.adaptive import suggest

    try:
        return suggest(study, store, doc, None, n=n, data_hashes=data_hashes)
    except UserError:
        return None


def _legacy_report_file(entry: Path) -> bool:
    """A file that a report folder written before the output marker existed holds."""
    return entry.is_file() and (
        entry.name in ("report.md", "report.html", "fits.json", "results.csv")
        or entry.suffix == ".png"
    )
