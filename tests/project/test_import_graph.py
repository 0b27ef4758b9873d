"""The house keeps its shape: no import circles, two wings apart, layers pointing down.

Read from ``dsmsyncd``'s own imports (``import_graph.py``, as ``shared/tools/house.py``
counts them). The daemon wing is a stack of layers in the order data flows, and so is
the server wing; an import may only point down its stack. The ``ALLOWED_*`` lists hold
what the tree did wrong when these tests were written (issue 7): each entry is a debt,
and an entry that no longer happens fails too, so the lists only ever shrink to empty.

The checker itself is tried on a small package written into ``tmp_path`` with one
circle, one crossing each way and one upward import, so its failures are proven.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.project.import_graph import (
    ImportGraph,
    Layer,
    circles,
    imports_into,
    imports_out_of,
    read_graph,
    upward_imports,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "dsmsyncd"
SERVER = "dsmsyncd.server"
# Only the commands that start the local server (``serve``, ``demo``) may import it.
SERVER_ENTRIES = ("dsmsyncd.cli",)

D, S = "dsmsyncd.", "dsmsyncd.server."
DAEMON_LAYERS = (
    *(Layer(name, (D + name,)) for name in ("cli", "daemon", "notify", "pipeline", "finalize")),
    *(Layer(name, (D + name,)) for name in ("sources", "dsmapi", "state", "observe")),
    Layer("base", (D + "config", D + "blob")),
)
SERVER_LAYERS = (
    Layer("top", (S + "main", S + "app")),
    *(Layer(name, (S + name,)) for name in ("http", "jobs", "state", "catalog", "storage")),
    Layer("transforms", (S + "transforms",)),
    Layer(
        "base",
        tuple(
            S + n
            for n in (
                "errors",
                "fields",
                "ids",
                "json_depth",
                "soql_types",
                "pause_points",
                "credentials",
            )
        ),
    ),
)

ALLOWED_CIRCLES: set[tuple[str, ...]] = set()
ALLOWED_DAEMON_UPWARD: set[str] = set()
ALLOWED_SERVER_UPWARD: set[str] = set()


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return read_graph(ROOT, PACKAGE)


def assert_only_allowed(found: list[str], allowed: set[str], rule: str) -> None:
    """``found`` holds nothing new, and every allowed debt still happens (else: delete it)."""
    new = sorted(set(found) - allowed)
    paid = sorted(allowed - set(found))
    assert not new, f"{rule}:\n  " + "\n  ".join(new)
    assert not paid, f"no longer happens, delete from the allowed list ({rule}):\n  " + (
        "\n  ".join(paid)
    )


def test_the_package_is_read_whole(graph: ImportGraph) -> None:
    assert {"dsmsyncd.cli.main", "dsmsyncd.server.main", "dsmsyncd.blob"} <= set(graph.modules)
    assert "dsmsyncd.server.main" in graph.edges["dsmsyncd.cli.main"]  # a function's import


def test_no_import_circle(graph: ImportGraph) -> None:
    found = [" <-> ".join(circle) for circle in circles(graph)]
    allowed = {" <-> ".join(circle) for circle in ALLOWED_CIRCLES}
    assert_only_allowed(found, allowed, "modules that import each other round a circle")


def test_the_server_wing_imports_nothing_of_the_daemon_wing(graph: ImportGraph) -> None:
    assert imports_out_of(graph, SERVER, PACKAGE) == []


def test_only_the_serve_and_demo_commands_import_the_server_wing(graph: ImportGraph) -> None:
    assert imports_into(graph, SERVER, PACKAGE, SERVER_ENTRIES) == []


def test_daemon_wing_imports_point_down_its_layers(graph: ImportGraph) -> None:
    found = upward_imports(graph, DAEMON_LAYERS)
    assert_only_allowed(found, ALLOWED_DAEMON_UPWARD, "upward imports in the daemon wing")


def test_server_wing_imports_point_down_its_layers(graph: ImportGraph) -> None:
    found = upward_imports(graph, SERVER_LAYERS)
    assert_only_allowed(found, ALLOWED_SERVER_UPWARD, "upward imports in the server wing")


# -- the checker, on a package made for it --------------------------------------------------

SYNTHETIC = {
    "pkg/__init__.py": "",
    "pkg/cli/__init__.py": "",
    "pkg/cli/main.py": "def serve() -> None:\n    from pkg.server import app\n",
    "pkg/daemon/__init__.py": "",
    "pkg/daemon/loop.py": "from ..state import store\n",
    "pkg/daemon/tools.py": "",
    "pkg/daemon/peek.py": "from pkg.server.app import handler\n",
    "pkg/state/__init__.py": "from . import store\n",
    "pkg/state/store.py": "\n".join(
        [
            "import pkg.state",  # its own package: no edge
            "from typing import TYPE_CHECKING",
            "if TYPE_CHECKING:",
            "    from pkg.cli.main import serve",
        ]
    ),
    "pkg/ring/__init__.py": "",
    "pkg/ring/one.py": "import pkg.ring.two\n",
    "pkg/ring/two.py": "from .three import x\n",
    "pkg/ring/three.py": "from pkg.ring import one\nx = 1\n",
    "pkg/server/__init__.py": "",
    "pkg/server/app.py": "from pkg.daemon import tools\nhandler = None\n",
}
SYNTHETIC_LAYERS = (
    Layer("cli", ("pkg.cli",)),
    Layer("daemon", ("pkg.daemon",)),
    Layer("state", ("pkg.state",)),
)


@pytest.fixture
def synthetic(tmp_path: Path) -> ImportGraph:
    for name, text in SYNTHETIC.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_graph(tmp_path, "pkg")


def test_checker_resolves_relative_and_type_checking_imports(synthetic: ImportGraph) -> None:
    assert synthetic.edges["pkg.daemon.loop"] == {"pkg.state", "pkg.state.store"}
    assert synthetic.edges["pkg.state.store"] == {"pkg.cli.main"}
    assert synthetic.edges["pkg.state"] == {"pkg.state.store"}
    assert synthetic.edges["pkg.cli.main"] == {"pkg.server", "pkg.server.app"}


def test_checker_finds_the_circle(synthetic: ImportGraph) -> None:
    assert circles(synthetic) == [("pkg.ring.one", "pkg.ring.three", "pkg.ring.two")]


def test_checker_finds_both_crossings(synthetic: ImportGraph) -> None:
    assert imports_out_of(synthetic, "pkg.server", "pkg") == [
        "pkg.server.app -> pkg.daemon",
        "pkg.server.app -> pkg.daemon.tools",
    ]
    assert imports_into(synthetic, "pkg.server", "pkg", ("pkg.cli",)) == [
        "pkg.daemon.peek -> pkg.server.app"
    ]


def test_checker_finds_the_upward_import(synthetic: ImportGraph) -> None:
    assert upward_imports(synthetic, SYNTHETIC_LAYERS) == [
        "pkg.state.store (state) -> pkg.cli.main (cli)"
    ]


def test_checker_names_new_and_paid_debts() -> None:
    with pytest.raises(AssertionError, match="a -> b"):
        assert_only_allowed(["a -> b"], set(), "rule")
    with pytest.raises(AssertionError, match="delete from the allowed list"):
        assert_only_allowed([], {"c -> d"}, "rule")
    assert_only_allowed(["a -> b"], {"a -> b"}, "rule")
