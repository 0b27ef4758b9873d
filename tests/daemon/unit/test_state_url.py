"""``[state] url``: which URLs name a store, and which store each one builds."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from dsmsyncd.state import (
    PostgresStateStore,
    check_state_url,
    open_state_store,
    sqlite_path_from_url,
)
from tests.daemon.support.jobs import add_job

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/dsmsyncd/state.db", "/var/lib/dsmsyncd/state.db"),
        ("sqlite:////var/lib/dsmsyncd/state.db", "/var/lib/dsmsyncd/state.db"),
        ("sqlite:///srv/my%20state.db", "/srv/my state.db"),
        ("sqlite:///:memory:", ":memory:"),
    ],
)
def test_sqlite_path_from_url_accepts(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize(
    "url", ["sqlite://host/state.db", "sqlite:///", "sqlite:///x.db?mode=ro", "redis://x"]
)
def test_sqlite_path_from_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="expected sqlite:///"):
        sqlite_path_from_url(url)


def test_open_state_store_postgresql_builds_postgres_store() -> None:
    store = open_state_store("postgresql://dsmsyncd:s3cret@db:5432/dsmsyncd?sslmode=verify-full")
    assert isinstance(store, PostgresStateStore)
    assert "s3cret" not in repr(store)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://db/dsm?sslmode=sometimes", "sslmode must be one of disable, allow,"),
        ("postgresql://db/dsm?search_path=x", "unknown PostgreSQL connection parameter(s) search_"),
        ("postgresql://db:port/dsm", "the port a number"),
    ],
)
def test_check_state_url_refuses_bad_postgres_urls(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        check_state_url(url)


async def test_open_state_store_memory_url_works() -> None:
    async with open_state_store("sqlite:///:memory:") as store:
        job = await add_job(store, "a.csv", identity="file:a.csv:1:1", size=1, mtime=T0)
        assert await store.unfinished_jobs() == [job]
