"""No import loop among our packages, function-level imports counted.

An AST census of every ``import`` in every module of the five packages, wherever it stands (at
the top, inside a function or a method), except those under ``if TYPE_CHECKING:``, which never
run. A loop is a strongly connected component of more than one module: ``a`` imports ``b``
(perhaps inside a function) and ``b``, directly or through others, imports ``a``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).parents[1]
PACKAGES = ("sammo_core", "mutators", "search", "renderers", "benchmarks")


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(module: str, path: Path, known: dict[str, Path]) -> list[tuple[str, int]]:
    """The modules of ``known`` that ``module`` imports, with the line of each import."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit_statement(other)
            else:
                visit_statement(child)

    def visit_statement(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                full = f"{base}.{alias.name}"
                names.append((full if full in known else base, node.lineno))
        else:
            visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    targets = []
    for name, line in names:
        parts = name.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts and ".".join(parts) != module:
            targets.append((".".join(parts), line))
    return targets


def import_graph(root: Path, packages: tuple[str, ...]) -> nx.DiGraph:
    """Module -> module it imports (anywhere in its code), for the modules of ``packages``."""
    known = _modules(root, packages)
    graph = nx.DiGraph()
    for module, path in known.items():
        graph.add_node(module)
        for target, line in _imported(module, path, known):
            graph.add_edge(module, target, line=line)
    return graph


def import_loops(graph: nx.DiGraph) -> list[list[str]]:
    """Each loop, as its modules with the line of each import that closes it."""
    loops = []
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            edges = graph.subgraph(component).edges(data="line")
            loops.append(sorted(f"{a} -> {b} (line {line})" for a, b, line in edges))
    return sorted(loops)


def test_no_import_loop_among_our_packages() -> None:
    graph = import_graph(ROOT, PACKAGES)
    assert graph.number_of_nodes() > 100  # the census read the packages
    assert import_loops(graph) == []


def test_the_census_finds_a_loop_through_a_function_level_import(tmp_path: Path) -> None:
    package = tmp_path / "sammo_core"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from sammo_core.b import g\n\ndef f():\n    return g()\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sammo_core import c\n"
        "def g():\n    from . import a\n    return a\n"
    )
    (package / "c.py").write_text("import sammo_core.b\n")
    loops = import_loops(import_graph(tmp_path, ("sammo_core",)))
    assert loops == [
        ["sammo_core.a -> sammo_core.b (line 1)", "sammo_core.b -> sammo_core.a (line 5)"]
    ]
