"""The layout holds: imports point inward, no package imports in a circle, modules stay small.

The layer contract lives in pyproject.toml (``[tool.importlinter]``); these tests make a new
violation fail ``make test`` with the offending import named.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "adapters", "commands", "cards", "storage")
MAX_LINES = 400


def test_imports_point_inward() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def package_of(graph: grimp.ImportGraph, module: str) -> str:
    """The package a module belongs to (a package's own __init__ belongs to itself)."""
    if graph.find_children(module):
        return module
    return module.rsplit(".", 1)[0] if "." in module else module


def package_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of two or more packages (Tarjan, iterative enough here)."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        source = package_of(graph, module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = package_of(graph, imported)
            if target != source:
                edges.setdefault(source, set()).add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def test_no_import_cycle_between_packages() -> None:
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    assert package_cycles(graph) == []


def test_the_cycle_check_finds_a_circle() -> None:
    """The check itself must be able to fail: two packages importing each other."""
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "b", "b.y", "c", "c.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="b.y")
    graph.add_import(importer="b.y", imported="a.x")
    graph.add_import(importer="c.z", imported="a.x")
    assert package_cycles(graph) == [["a", "b"]]


def test_no_module_over_400_lines() -> None:
    too_long = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert too_long == [], f"split these modules (max {MAX_LINES} lines): {too_long}"
