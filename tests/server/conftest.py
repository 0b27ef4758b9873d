"""Fixtures: a real local server on loopback, and HTTP clients signed in as its users.

The server runs in the test's own event loop and is bound before the fixture yields
(``start_server`` returns only after ``site.start()``), so no test ever waits on time.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer, ServeOptions, start_server

ALICE = ("alice", "alice-password")
BOB = ("bob", "bob-password")
ALICE_TOKEN = "alice-token-0123456789"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    options = ServeOptions(
        listen_host="127.0.0.1",
        listen_port=0,
        data_dir=tmp_path / "data",
        users=[ALICE, BOB],
        tokens=[(ALICE[0], ALICE_TOKEN)],
    )
    running = await start_server(options)
    try:
        yield running
    finally:
        await running.stop()


def basic_auth(name: str, password: str) -> str:
    """An ``Authorization`` header value (aiohttp's ``BasicAuth`` is deprecated)."""
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def _session(server: RunningServer, auth: tuple[str, str] | None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        base_url=server.url,
        headers={"Authorization": basic_auth(*auth)} if auth else None,
        raise_for_status=False,
    )


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Signed in as ``alice`` (HTTP Basic)."""
    async with _session(server, ALICE) as session:
        yield session


@pytest.fixture
async def bob_api(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Signed in as ``bob``, a second user who owns nothing of alice's."""
    async with _session(server, BOB) as session:
        yield session


@pytest.fixture
async def anon_api(server: RunningServer) -> AsyncIterator[aiohttp.ClientSession]:
    """No credentials at all."""
    async with _session(server, None) as session:
        yield session
