"""The two wings import one way: no module of src/ or lab/src/ is part of an import cycle, and
importing the optimizer loads nothing of the lab.

Imports are read from each module's ``ast`` (function-level imports included: they hide a cycle, they
do not remove it; ``if TYPE_CHECKING:`` blocks excluded: they never run). Modules loaded by name
(``importlib.import_module`` over a registry of strings) are not edges.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "src", ROOT / "lab" / "src")


def modules() -> dict[str, Path]:
    """Every module under the source roots, by dotted name (a package by its ``__init__``)."""
    out = {}
    for root in SOURCES:
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """The tree's import statements, skipping ``if TYPE_CHECKING:`` bodies."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports: ``from X import n`` names the submodule ``X.n`` when
    there is one, else ``X`` itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in known)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            target = f"{base}.{alias.name}"
            if target in known:
                out.add(target)
            elif base in known:
                out.add(base)
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_sees_a_cycle_hidden_in_a_function_and_ignores_type_checking(tmp_path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n")
    (pkg / "d.py").write_text("from . import c\n")
    known = {f"pkg.{m}": pkg / f"{m}.py" for m in "abcd"} | {"pkg": pkg / "__init__.py"}
    graph = {name: imports(name, path, known) for name, path in known.items()}
    assert graph["pkg.d"] == {"pkg.c"} and graph["pkg.c"] == set()
    assert cycles(graph) == [{"pkg.a", "pkg.b"}]


def test_the_lab_is_part_of_no_import_cycle() -> None:
    lab_cycles = [c for c in cycles(import_graph()) if any(m.startswith("sgdsai_lab") for m in c)]
    assert lab_cycles == []


#: the lab's floors, bottom first: a module imports only from its own floor or the floors below
LAB_LAYERS = (
    (
        "fetch",
        "readme",
        "floors",
        "stats",
    ),
    ("metrics",),  # download/verify/cache; README blocks; pure n-gram floors and statistics
    ("sources",),
    ("tasks",),
    ("zoo",),
    ("config",),
    ("presets",),
    ("records", "resume"),
    ("run",),
    ("sweep",),
    ("analysis",),
    ("claims",),
    ("study",),
    ("report",),
    ("bench",),
    ("data", "demo"),
    ("cli",),
)


def _layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    return next((i for i, names in enumerate(LAB_LAYERS) if part in names), -1)


def test_every_lab_module_has_a_layer() -> None:
    lab = [m for m in import_graph() if m.startswith("sgdsai_lab.")]
    assert lab and [m for m in lab if _layer(m) < 0] == []


def test_the_lab_imports_only_downward() -> None:
    graph = import_graph()
    upward = [(m, t) for m in graph if m.startswith("sgdsai_lab.") for t in graph[m]
              if t.startswith("sgdsai_lab.") and _layer(t) > _layer(m)]  # fmt: skip
    assert upward == []


def test_the_core_is_part_of_no_import_cycle() -> None:
    assert [c for c in cycles(import_graph()) if not any(m.startswith("sgdsai_lab") for m in c)] == []


def test_the_core_imports_nothing_of_the_lab() -> None:
    graph = import_graph()
    core = {name for name in graph if name.split(".")[0] == "sgdsai"}
    assert core, "no core modules found"
    assert {(m, t) for m in core for t in graph[m] if t.startswith("sgdsai_lab")} == set()


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_the_core_loads_nothing_beyond_torch() -> None:
    core = "import sgdsai, sgdsai.checkpoint, sgdsai.distributed, sgdsai.param_groups, sgdsai.reference"
    extra = _loaded_after(core) - _loaded_after("import torch, torch.distributed")
    assert {m for m in extra if m.split(".")[0] != "sgdsai"} == set()
    assert "sgdsai.optimizer" in extra  # the probe itself works
