"""HTTP sessions on the local server (``tests/conftest.py``), signed in as its users."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.support.local_server import ALICE, BOB, basic_auth


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
