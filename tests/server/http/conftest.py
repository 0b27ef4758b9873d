"""Seams in the server for the HTTP tests: a parse held open, serve flags caught unrun."""

from __future__ import annotations

import pytest

from dsmsyncd.server import main as server_main
from dsmsyncd.server.main import RunningServer, ServeOptions
from tests.server.http.seams import HeldParse, hold_parses


@pytest.fixture
def held_parse(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> HeldParse:
    """Every parse of the server waits, once started, for the test to release it."""
    return hold_parses(server, monkeypatch)


@pytest.fixture
def serve_options(monkeypatch: pytest.MonkeyPatch) -> list[ServeOptions]:
    """``dsmsyncd serve`` runs no server: each run's options are appended here instead."""
    seen: list[ServeOptions] = []

    def run_server(options: ServeOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(server_main, "run_server", run_server)
    return seen
