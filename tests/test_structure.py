"""The package's shape, checked: imports between the sync's modules form no cycle, and the
report package (a library a notebook may import) loads no CLI module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.harness.dbt import ROOT

PACKAGE = ROOT / "sync"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the sync modules it imports at run time (anywhere in it, functions
    included; relative imports resolved)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        typing_only = {  # `if TYPE_CHECKING:` imports: annotations, never run
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = (
                    node.module
                    if node.level == 0
                    else ".".join(p for p in (base, node.module) if p)
                )
                # `from package import module` imports the module; anything else, the package
                subs = [f"{module}.{a.name}" for a in node.names]
                targets = subs if all(t in modules for t in subs) else [module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in modules and t != name}
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first search)."""
    out: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            out.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return out


def test_relative_imports_are_read() -> None:
    graph = import_graph()
    assert "sync.standin.bulkcsv" in graph["sync.standin.server"]  # `from . import bulkcsv`
    assert "sync.standin.faults" in graph["sync.standin.server"]  # `from .faults import ...`


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_sync_modules_import_no_cycle() -> None:
    graph = import_graph()
    assert "sync.cli" in graph and graph["sync.report.command"]  # the graph was read
    assert cycles(graph) == []


def test_importing_the_report_loads_no_cli_module() -> None:
    code = "import sys, sync.report; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert "sync.report.queries" in loaded
    assert "sync.cli" not in loaded and "sync.runner" not in loaded
