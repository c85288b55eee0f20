"""The package layout is the pipeline: no stage imports a later stage or the CLI, ``ftscale.laws``
imports numpy/scipy only, and no library module imports the test fakes (``ftscale.testing``).

Imports are read from the source (every ``import`` statement, also those inside functions), so
a lazy import against the pipeline is caught as well as a top-level one."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import ftscale

ROOT = Path(ftscale.__file__).parent

#: Modules every stage may use: the vocabulary, errors, file and JSON helpers, the table reader,
#: the text formatters.
BASE = {
    "ftscale",
    "errors",
    "schema",
    "fsutil",
    "jsonio",
    "tables",
    "devices",
    "textfmt",
    "__main__",
}
#: The stages in pipeline order; a module may import its own stage and earlier ones. ``laws``
#: (numpy/scipy only, nothing of the pipeline) is the library under the fitting stage; the
#: study file's law names come from its registry.
STAGES = ["laws", "data", "models", "finetune", "study", "analysis", "report", "demo", "cli"]


def _stage(module: str) -> str:
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else "ftscale"
    return {"lawfit": "analysis"}.get(head, head)


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_no_stage_imports_a_later_stage_or_the_cli():
    modules = _modules()
    bad = []
    for name, path in modules.items():
        stage = _stage(name)
        if stage in BASE or stage == "testing":
            continue
        for imp in _imports(path):
            if not imp.startswith("ftscale.") or imp not in modules:
                continue
            target = _stage(imp)
            if target in BASE or target == stage:
                continue
            if target == "testing" or STAGES.index(target) > STAGES.index(stage):
                bad.append(f"{name} imports {imp}")
    assert not bad, "\n".join(sorted(bad))


def test_laws_import_numpy_and_scipy_only():
    allowed = set(sys.stdlib_module_names) | {"numpy", "scipy"}
    bad = []
    for name, path in _modules().items():
        if _stage(name) != "laws":
            continue
        for imp in _imports(path):
            top = imp.split(".")[0]
            ok = _stage(imp) in ("laws", "errors") if top == "ftscale" else top in allowed
            if not ok:
                bad.append(f"{name} imports {imp}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    """Within the package no module reaches itself through imports (lazy ones included)."""
    modules = _modules()
    graph = {
        name: {i for i in _imports(path) if i in modules and i != name}
        for name, path in modules.items()
    }
    # a package's __init__ re-exporting its modules is not a cycle of those modules
    graph = {n: {i for i in deps if not n.startswith(i + ".")} for n, deps in graph.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(" -> ".join(stack[stack.index(m) :] + [n, m]))
            elif m not in state:
                visit(m, stack + [n])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [])
    assert not cycles, "\n".join(cycles)


def _messages(path: Path) -> list[str]:
    """String constants of a module other than docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = set()
    for node in ast.walk(tree):
        scope = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, scope) and node.body and isinstance(node.body[0], ast.Expr):
            docs.add(id(node.body[0].value))
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_laws_messages_name_no_command_line_flag():
    flag = re.compile(r"(^|[\s(])--[a-z]")
    bad = [
        f"{name}: {m!r}"
        for name, path in _modules().items()
        if _stage(name) == "laws"
        for m in _messages(path)
        if flag.search(m)
    ]
    assert not bad, "\n".join(bad)


def test_the_checks_see_a_violation(tmp_path):
    # the reader itself: a lazy import inside a function counts
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from ftscale.cli._common import print_json\n")
    assert "ftscale.cli._common" in _imports(f)
    assert STAGES.index(_stage("ftscale.cli._common")) > STAGES.index(_stage("ftscale.report.x"))
