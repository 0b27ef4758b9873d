"""The pipeline harness (``harness.py``) on the local server, with a fresh state store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import SqliteStateStore
from tests.daemon.integration.harness import Harness


@pytest.fixture
async def harness(
    tmp_path: Path, client: DsmapiClient, store: SqliteStateStore, server: RunningServer
) -> Harness:
    return Harness(tmp_path / "files", client, store, server)
