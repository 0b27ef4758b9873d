"""What only the PostgreSQL state store has: replicas migrating one fresh database at
once, libpq's URL options passed through, and a schema kept in step with SQLite's.

The store contract itself (dedup, compare-and-set, lanes, the upload journal) runs
against PostgreSQL in test_state_sqlite.py and test_state_upload_journal.py.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from dsmsyncd.state import SCHEMA_VERSION, PostgresStateStore, StateStoreError
from dsmsyncd.state.migrations import MIGRATIONS as SQLITE_MIGRATIONS
from dsmsyncd.state.postgres_migrations import MIGRATIONS, PG_SCHEMA_VERSION


async def test_replicas_starting_at_once_migrate_one_fresh_database_safely(
    fresh_database: str,
) -> None:
    stores = [PostgresStateStore(fresh_database) for _ in range(4)]
    try:
        await asyncio.gather(*(store.open() for store in stores))
        await asyncio.gather(*(store.ping() for store in stores))
        counts = await asyncio.gather(*(store.counts_by_state() for store in stores))
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert all(sum(c.values()) == 0 for c in counts)
    conn = await asyncpg.connect(fresh_database)
    try:
        versions = [row[0] for row in await conn.fetch("SELECT version FROM schema_version")]
        tables = {
            row[0]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
    finally:
        await conn.close()
    assert sorted(versions) == [4, SCHEMA_VERSION]  # each migrated once, by one of them
    assert tables == {
        *("schema_version", "jobs", "job_events", "job_uploads", "job_upload_chunks"),
        *("replicas", "lane_leases"),
    }


async def test_sslmode_is_passed_through_to_the_connection(postgres_url: str) -> None:
    async with PostgresStateStore(f"{postgres_url}?sslmode=disable") as plain:
        await plain.ping()
    # verify-full with a CA file that does not exist cannot connect, whatever the server.
    bad = f"{postgres_url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"
    store = PostgresStateStore(bad.replace("postgresql://", "postgresql://u:Zq7-secret@", 1))
    with pytest.raises(StateStoreError, match="cannot open state database") as caught:
        await store.open()
    assert "Zq7-secret" not in str(caught.value)
    with pytest.raises(StateStoreError, match="not open"):
        await store.ping()


async def test_unreachable_server_is_a_clear_store_error() -> None:
    # Port 1 on loopback: nothing listens there, the refusal is immediate.
    store = PostgresStateStore("postgresql://dsmsyncd:Zq7-secret@127.0.0.1:1/dsmsyncd")
    with pytest.raises(StateStoreError, match="cannot open state database") as caught:
        await store.open()
    assert "Zq7-secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_schema_versions_are_in_step_with_sqlite() -> None:
    """One number means one schema on both: a new SQLite migration needs its PostgreSQL twin."""
    assert PG_SCHEMA_VERSION == SCHEMA_VERSION == len(SQLITE_MIGRATIONS)
    assert [version for version, _ in MIGRATIONS] == sorted({v for v, _ in MIGRATIONS})
