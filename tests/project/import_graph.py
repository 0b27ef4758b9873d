"""A package's import graph, read with ``ast``, and the rules its house keeps.

Every ``import`` and ``from … import`` counts, wherever it stands: at the top, inside a
function, under ``if TYPE_CHECKING:`` (a circle of types is still a circle to untie).
Relative imports are resolved against the importing module. ``from a.b import c`` is an
edge to ``a.b.c`` when that is a module and to ``a.b`` either way (importing it runs
``a/b/__init__.py``); a module's own ancestor packages are not edges (they are its face,
not a dependency). This is what ``shared/tools/house.py`` counts, so the two agree.

The rules, each a function returning the offending edges named by module:
circles (strongly connected modules), wing crossings, and imports that point up a
stack of layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ImportGraph:
    """Modules by dotted name (a package by its own name), and who imports whom."""

    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)

    def pairs(self) -> Iterator[tuple[str, str]]:
        for importer in sorted(self.edges):
            for imported in sorted(self.edges[importer]):
                yield importer, imported


def read_graph(root: Path, package: str) -> ImportGraph:
    """The import graph of ``root/package`` (a directory of ``.py`` files)."""
    modules = {_module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    graph = ImportGraph(modules)
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(name, path, node):
                    known = _known(target, modules)
                    if known and known != name and not name.startswith(known + "."):
                        graph.edges.setdefault(name, set()).add(known)
    return graph


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _targets(importer: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = importer.split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _known(target: str, modules: dict[str, Path]) -> str:
    """The longest prefix of ``target`` that is a module of the graph ('' if none)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def circles(graph: ImportGraph) -> list[tuple[str, ...]]:
    """Every set of modules that import each other round a circle, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[str, ...]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.edges.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while (member := stack.pop()) != module:
                component.append(member)
            component.append(module)
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


def imports_out_of(graph: ImportGraph, wing: str, root: str) -> list[str]:
    """Imports from inside ``wing`` to the rest of ``root`` (not ``root`` itself), "a -> b"."""
    return [
        f"{importer} -> {imported}"
        for importer, imported in graph.pairs()
        if _within(importer, wing) and not _within(imported, wing) and imported != root
    ]


def imports_into(graph: ImportGraph, wing: str, root: str, entries: Iterable[str]) -> list[str]:
    """Imports of ``wing`` from the rest of ``root``, except from within ``entries`` (the
    commands that start it), as "a -> b"."""
    allowed = tuple(entries)
    return [
        f"{importer} -> {imported}"
        for importer, imported in graph.pairs()
        if _within(imported, wing)
        and not _within(importer, wing)
        and importer != root
        and not any(_within(importer, entry) for entry in allowed)
    ]


@dataclass(frozen=True)
class Layer:
    """One layer of a stack: its name and the modules (prefixes) it holds."""

    name: str
    prefixes: tuple[str, ...]

    def holds(self, module: str) -> bool:
        return any(_within(module, prefix) for prefix in self.prefixes)


def upward_imports(graph: ImportGraph, stack: Sequence[Layer]) -> list[str]:
    """Imports from a layer to one above it in ``stack`` (listed top first), as
    "a (layer) -> b (layer)". Modules in no layer of the stack are not looked at."""

    def level(module: str) -> int | None:
        return next((n for n, layer in enumerate(stack) if layer.holds(module)), None)

    found = []
    for importer, imported in graph.pairs():
        low, high = level(importer), level(imported)
        if low is not None and high is not None and high < low:
            found.append(f"{importer} ({stack[low].name}) -> {imported} ({stack[high].name})")
    return found
