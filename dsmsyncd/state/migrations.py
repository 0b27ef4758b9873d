"""The SQLite state database's schema: forward-only migrations, how they are applied,
and the lane filters whose spelling the partial indexes depend on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from dsmsyncd.state import sqlite_codec as codec
from dsmsyncd.state.sqlite_thread import InThread
from dsmsyncd.state.store import SchemaTooNew

logger = logging.getLogger("dsmsyncd.state.migrations")

# Non-terminal jobs, spelled exactly as in the partial indexes of migration 1 so that
# SQLite uses them. Changing the terminal set needs a migration that rebuilds them.
ACTIVE_SQL = "state NOT IN ('awaiting_approval', 'published', 'quarantined', 'skipped')"
# A dataset's lane: its active jobs less the HELD ones, which wait outside the queue.
LANE_SQL = f"{ACTIVE_SQL} AND state != 'held'"
# Arrival order within a lane (invariant 4): the file's mtime, then its path.
LANE_ORDER = "mtime_us, relative_path, id"

# Forward-only; each entry is applied once, in order, and recorded in schema_version.
# Never edit a released migration: append one.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: jobs and their history
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            relative_path TEXT NOT NULL,
            identity TEXT NOT NULL,
            content_sha256 TEXT,
            size INTEGER NOT NULL,
            mtime_us INTEGER NOT NULL,
            dataset TEXT NOT NULL,
            mapping_index INTEGER NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            revision_seq INTEGER,
            revision_id INTEGER,
            source_id INTEGER,
            output_schema_id INTEGER,
            task_set_id INTEGER,
            error TEXT,
            error_count INTEGER NOT NULL DEFAULT 0,
            discovered_at_us INTEGER NOT NULL,
            updated_at_us INTEGER NOT NULL,
            started_at_us INTEGER,
            finished_at_us INTEGER,
            next_attempt_at_us INTEGER,
            UNIQUE (source, identity)
        )""",
        """CREATE INDEX jobs_lane ON jobs (dataset, mtime_us, relative_path, id)
            WHERE state NOT IN ('awaiting_approval', 'published', 'quarantined', 'skipped')""",
        """CREATE INDEX jobs_published ON jobs (dataset, finished_at_us)
            WHERE state = 'published'""",
        "CREATE INDEX jobs_updated ON jobs (updated_at_us)",
        "CREATE INDEX jobs_dataset_updated ON jobs (dataset, updated_at_us)",
        "CREATE INDEX jobs_state ON jobs (state)",
        """CREATE TABLE job_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id INTEGER NOT NULL REFERENCES jobs (id),
            at_us INTEGER NOT NULL,
            state TEXT NOT NULL,
            previous_state TEXT,
            details TEXT NOT NULL
        )""",
        "CREATE INDEX job_events_job ON job_events (job_id, id)",
    ),
    (  # 2: the mapping a job was routed with travels with it (issue 11: a reload that
        # reordered [[mapping]] tables sent queued jobs to another mapping by index)
        "ALTER TABLE jobs ADD COLUMN routing TEXT",
    ),
    (  # 3: failed attempts to read the job's file, capped by [limits] max_read_attempts
        "ALTER TABLE jobs ADD COLUMN read_failures INTEGER NOT NULL DEFAULT 0",
    ),
    (  # 4: resumable uploads (issue 12): each job's upload plan and acknowledged chunks
        """CREATE TABLE job_uploads (
            job_id INTEGER PRIMARY KEY REFERENCES jobs (id),
            source_id INTEGER NOT NULL,
            identity TEXT NOT NULL,
            size INTEGER NOT NULL,
            chunk_size INTEGER NOT NULL
        )""",
        """CREATE TABLE job_upload_chunks (
            job_id INTEGER NOT NULL REFERENCES job_uploads (job_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            byte_offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (job_id, seq)
        )""",
    ),
    (  # 5: replicas and the dataset lanes they hold under leases (issue 13)
        """CREATE TABLE replicas (
            name TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            version TEXT NOT NULL,
            started_at_us INTEGER NOT NULL,
            seen_at_us INTEGER NOT NULL
        )""",
        """CREATE TABLE lane_leases (
            dataset TEXT PRIMARY KEY,
            replica TEXT NOT NULL,
            job_id INTEGER,
            acquired_at_us INTEGER NOT NULL,
            renewed_at_us INTEGER NOT NULL,
            expires_at_us INTEGER NOT NULL
        )""",
        "CREATE INDEX lane_leases_replica ON lane_leases (replica)",
        "CREATE INDEX lane_leases_job ON lane_leases (job_id)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: InThread, path: str, clock: Callable[[], datetime]) -> None:
    """Bring the database at ``path`` to ``SCHEMA_VERSION`` in one transaction;
    ``SchemaTooNew`` if a newer dsmsyncd wrote it (nothing is changed then)."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at_us INTEGER NOT NULL)"
        )
        rows = await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        current = int(next(iter(rows))[0])
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(path, current, SCHEMA_VERSION)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, applied_at_us) VALUES (?, ?)",
                (version, codec.to_us(clock())),
            )
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    if current < SCHEMA_VERSION:
        logger.info(
            "state database %s migrated from schema %d to %d",
            path,
            current,
            SCHEMA_VERSION,
        )
