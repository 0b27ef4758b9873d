"""Fixtures both wings share: the real local server on loopback, in the test's loop.

Wing-specific fixtures live in ``tests/server/conftest.py`` (HTTP sessions signed in
as its users) and ``tests/daemon/conftest.py`` (the daemon's client, state store, S3).
Plain helpers live in ``tests/support/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Helper modules assert too: let pytest explain their failures as it does a test's.
pytest.register_assert_rewrite(
    "tests.support", "tests.daemon", "tests.server", "tests.project.kustomize"
)

from dsmsyncd.server.main import RunningServer  # noqa: E402
from tests.support.local_server import local_server  # noqa: E402


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with local_server(tmp_path / "server") as running:
        yield running
