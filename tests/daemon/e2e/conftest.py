"""End-to-end fixtures: a site (folders and a daemon config), plain HTTP reads, a daemon process.

The server is the real local server in this event loop (``tests/conftest.py``);
everything the tests check is read back over HTTP with a plain aiohttp session
(``http``), not with the daemon's own client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess
from tests.daemon.e2e.site import Site
from tests.support.local_server import ROBOT, basic_auth


@pytest.fixture
def site(tmp_path: Path, server: RunningServer) -> Site:
    return Site(tmp_path / "site", server.url)


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession(headers={"Authorization": basic_auth(*ROBOT)}) as session:
        yield Http(server.url, session)


@pytest.fixture
async def daemon_process(site: Site, tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    process = DaemonProcess(site, tmp_path / "daemon.log")
    try:
        yield process
    finally:
        await process.stop()
