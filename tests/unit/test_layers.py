"""The daemon wing's layers, read off its imports: no module imports a layer above its own.

The order is the one ``dsmsyncd/__init__.py`` draws, in the order data flows; ``config``
and ``blob`` are the base every layer may use. Imports under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dsmsyncd"
LAYERS = [
    "cli",
    "daemon",
    "pipeline",
    "finalize",
    "sources",
    "dsmapi",
    "state",
    "observe",
    "config",
    "blob",
]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "dsmsyncd" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_no_daemon_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        own = _layer(module)
        if own is None:
            continue
        for imported in _imports(path):
            target = _layer(imported)
            if target is not None and LAYERS.index(target) < LAYERS.index(own):
                upward.append(f"{module} imports {imported} ({own} -> {target})")
    assert not upward, "\n".join(upward)


def test_the_layer_list_names_every_package_of_the_daemon_wing() -> None:
    wing = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    wing |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert wing - {"server"} == set(LAYERS)
