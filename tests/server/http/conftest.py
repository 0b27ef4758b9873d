"""Seams in the server for the HTTP tests: a parse held open, serve flags caught unrun."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from dsmsyncd.server import main as server_main
from dsmsyncd.server.main import RunningServer, ServeOptions


@dataclass
class HeldParse:
    """``started`` is set once a parse of an upload runs; it goes on when ``release`` is."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def held_parse(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> HeldParse:
    """Every parse of the server waits, once started, for the test to release it."""
    held = HeldParse()
    original = server.state.rows.ingest

    async def gated(*args: Any, **kwargs: Any) -> Any:
        held.started.set()
        await held.release.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(server.state.rows, "ingest", gated)
    return held


@pytest.fixture
def serve_options(monkeypatch: pytest.MonkeyPatch) -> list[ServeOptions]:
    """``dsmsyncd serve`` runs no server: each run's options are appended here instead."""
    seen: list[ServeOptions] = []

    def run_server(options: ServeOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(server_main, "run_server", run_server)
    return seen
