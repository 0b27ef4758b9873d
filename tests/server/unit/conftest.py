"""A row store of its own for each test that parses files into DuckDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dsmsyncd.server.storage.rowstore import RowStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RowStore]:
    rows = RowStore(tmp_path / "rows.duckdb")
    yield rows
    rows.close()
