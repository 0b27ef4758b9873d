"""The PostgreSQL state database's schema, and how replicas starting at once migrate it.

The schema is the SQLite one (``migrations.py``) in PostgreSQL's types: times are
``timestamptz`` (microseconds, like SQLite's ``*_us`` integers), JSON is ``jsonb``,
ids are ``bigint`` identities. Version numbers are shared with SQLite, so that
"schema 5" means the same tables on both: the first PostgreSQL migration creates
what SQLite reached in versions 1 to 4 in one step, and every later change is
appended to both lists under the same number (a test keeps them in step).

Several replicas may start at the same moment against an empty database. Each
migrates in one transaction that first takes a transaction-level advisory lock
(``MIGRATION_LOCK``): the first creates the tables and commits, the others wait for
the lock, then find the schema current and change nothing. The lock goes with the
transaction, so a replica killed mid-migration leaves neither a half schema (DDL is
transactional in PostgreSQL) nor a held lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy

from dsmsyncd.state.migrations import ACTIVE_SQL
from dsmsyncd.state.store import SchemaTooNew

logger = logging.getLogger("dsmsyncd.state.postgres_migrations")

# Advisory lock keys are per database; these spell "dsmsyncM" and "dsmsyncD" in ASCII.
MIGRATION_LOCK = int.from_bytes(b"dsmsyncM", "big")
"""Held (transaction-level) while one replica checks and migrates the schema."""

_SCHEMA_4 = (
    """CREATE TABLE jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        source TEXT NOT NULL,
        relative_path TEXT NOT NULL,
        identity TEXT NOT NULL,
        content_sha256 TEXT,
        size BIGINT NOT NULL,
        mtime TIMESTAMPTZ NOT NULL,
        dataset TEXT NOT NULL,
        mapping_index INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        revision_seq BIGINT,
        revision_id BIGINT,
        source_id BIGINT,
        output_schema_id BIGINT,
        task_set_id BIGINT,
        error TEXT,
        error_count BIGINT NOT NULL DEFAULT 0,
        discovered_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        next_attempt_at TIMESTAMPTZ,
        routing JSONB,
        read_failures INTEGER NOT NULL DEFAULT 0,
        UNIQUE (source, identity)
    )""",
    f"CREATE INDEX jobs_lane ON jobs (dataset, mtime, relative_path, id) WHERE {ACTIVE_SQL}",
    "CREATE INDEX jobs_published ON jobs (dataset, finished_at) WHERE state = 'published'",
    "CREATE INDEX jobs_updated ON jobs (updated_at)",
    "CREATE INDEX jobs_dataset_updated ON jobs (dataset, updated_at)",
    "CREATE INDEX jobs_state ON jobs (state)",
    """CREATE TABLE job_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        job_id BIGINT NOT NULL REFERENCES jobs (id),
        at TIMESTAMPTZ NOT NULL,
        state TEXT NOT NULL,
        previous_state TEXT,
        details JSONB NOT NULL
    )""",
    "CREATE INDEX job_events_job ON job_events (job_id, id)",
    """CREATE TABLE job_uploads (
        job_id BIGINT PRIMARY KEY REFERENCES jobs (id),
        source_id BIGINT NOT NULL,
        identity TEXT NOT NULL,
        size BIGINT NOT NULL,
        chunk_size BIGINT NOT NULL
    )""",
    """CREATE TABLE job_upload_chunks (
        job_id BIGINT NOT NULL REFERENCES job_uploads (job_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        byte_offset BIGINT NOT NULL,
        length BIGINT NOT NULL,
        digest TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    )""",
)

_SCHEMA_5 = (
    """CREATE TABLE replicas (
        name TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        version TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        seen_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE lane_leases (
        dataset TEXT PRIMARY KEY,
        replica TEXT NOT NULL,
        job_id BIGINT,
        acquired_at TIMESTAMPTZ NOT NULL,
        renewed_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    )""",
    "CREATE INDEX lane_leases_replica ON lane_leases (replica)",
    "CREATE INDEX lane_leases_job ON lane_leases (job_id)",
)


# (version, statements), ascending; never edit a released entry: append one, with the
# number the same change has in migrations.MIGRATIONS.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = ((4, _SCHEMA_4), (5, _SCHEMA_5))
PG_SCHEMA_VERSION = MIGRATIONS[-1][0]


async def migrate(
    conn: PoolConnectionProxy[Record], location: str, clock: Callable[[], datetime]
) -> None:
    """Bring the database to ``PG_SCHEMA_VERSION`` in one transaction, under the
    migration lock; ``SchemaTooNew`` if a newer dsmsyncd wrote it (nothing changed)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        current = int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
        if current > PG_SCHEMA_VERSION:
            raise SchemaTooNew(location, current, PG_SCHEMA_VERSION)
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                version,
                clock(),
            )
    if current < PG_SCHEMA_VERSION:
        logger.info(
            "state database %s migrated from schema %d to %d",
            location,
            current,
            PG_SCHEMA_VERSION,
        )
