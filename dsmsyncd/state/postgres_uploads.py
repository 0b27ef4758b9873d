"""The upload journal's SQL on PostgreSQL: each job's upload plan and acknowledged chunks.

The same journal as ``sqlite_uploads`` (see there for why it exists), in PostgreSQL's
spelling; run inside the store's transactions. ``job_upload_chunks`` rows cascade
away with their ``job_uploads`` row, so starting an upload over is one ``DELETE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from asyncpg import Record
from asyncpg.pool import PoolConnectionProxy

from dsmsyncd.state.model import ChunkRecord, UploadPlan, UploadProgress

if TYPE_CHECKING:  # asyncpg's classes are generic to the type checker only
    Conn = PoolConnectionProxy[Record]


async def begin(conn: Conn, job_id: int, plan: UploadPlan) -> None:
    await forget(conn, job_id)
    await conn.execute(
        "INSERT INTO job_uploads (job_id, source_id, identity, size, chunk_size)"
        " VALUES ($1, $2, $3, $4, $5)",
        job_id,
        plan.source_id,
        plan.identity,
        plan.size,
        plan.chunk_size,
    )


async def record(conn: Conn, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
    # The WHERE EXISTS is the guard of StateStore.record_chunk: a chunk of an upload
    # that was started over (another source) is not written.
    await conn.execute(
        "INSERT INTO job_upload_chunks (job_id, seq, byte_offset, length, digest)"
        " SELECT $1, $2, $3, $4, $5 WHERE EXISTS"
        " (SELECT 1 FROM job_uploads WHERE job_id = $1 AND source_id = $6)"
        " ON CONFLICT (job_id, seq) DO UPDATE SET byte_offset = EXCLUDED.byte_offset,"
        " length = EXCLUDED.length, digest = EXCLUDED.digest",
        job_id,
        chunk.seq,
        chunk.offset,
        chunk.length,
        chunk.digest,
        source_id,
    )


async def forget(conn: Conn, job_id: int) -> None:
    await conn.execute("DELETE FROM job_uploads WHERE job_id = $1", job_id)


async def progress(conn: Conn, job_id: int) -> UploadProgress | None:
    """The job's plan and chunks, read in one snapshot (no write lands in between)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        plan = await conn.fetchrow(
            "SELECT source_id, identity, size, chunk_size FROM job_uploads WHERE job_id = $1",
            job_id,
        )
        chunks = await conn.fetch(
            "SELECT seq, byte_offset, length, digest FROM job_upload_chunks"
            " WHERE job_id = $1 ORDER BY seq",
            job_id,
        )
    return None if plan is None else UploadProgress(_plan(plan), _chunks(chunks))


def _plan(row: Record) -> UploadPlan:
    return UploadPlan(
        source_id=int(row["source_id"]),
        identity=str(row["identity"]),
        size=int(row["size"]),
        chunk_size=int(row["chunk_size"]),
    )


def _chunks(rows: Sequence[Record]) -> tuple[ChunkRecord, ...]:
    return tuple(
        ChunkRecord(
            seq=int(c["seq"]),
            offset=int(c["byte_offset"]),
            length=int(c["length"]),
            digest=str(c["digest"]),
        )
        for c in rows
    )
