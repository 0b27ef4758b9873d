"""The upload journal's SQL: each job's upload plan and the chunks the server acknowledged.

Kept apart from ``sqlite.py`` (which runs these inside its own transactions, on its one
connection) because it is its own job: what a restarted job needs to send only the
chunks the server does not have yet. ``job_upload_chunks`` rows cascade away with
their ``job_uploads`` row, so starting an upload over is one ``DELETE``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from dsmsyncd.state.model import ChunkRecord, UploadPlan, UploadProgress
from dsmsyncd.state.sqlite_thread import InThread


async def begin(conn: InThread, job_id: int, plan: UploadPlan) -> None:
    await forget(conn, job_id)
    await conn.execute(
        "INSERT INTO job_uploads (job_id, source_id, identity, size, chunk_size)"
        " VALUES (?, ?, ?, ?, ?)",
        (job_id, plan.source_id, plan.identity, plan.size, plan.chunk_size),
    )


async def record(conn: InThread, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
    # The WHERE EXISTS is the guard of StateStore.record_chunk: a chunk of an upload
    # that was started over (another source) is not written.
    await conn.execute(
        "INSERT OR REPLACE INTO job_upload_chunks (job_id, seq, byte_offset, length, digest)"
        " SELECT ?, ?, ?, ?, ? WHERE EXISTS"
        " (SELECT 1 FROM job_uploads WHERE job_id = ? AND source_id = ?)",
        (job_id, chunk.seq, chunk.offset, chunk.length, chunk.digest, job_id, source_id),
    )


async def forget(conn: InThread, job_id: int) -> None:
    await conn.execute("DELETE FROM job_uploads WHERE job_id = ?", (job_id,))


def progress(plans: Iterable[sqlite3.Row], chunks: Iterable[sqlite3.Row]) -> UploadProgress | None:
    """The rows of ``PLAN_SQL`` and ``CHUNKS_SQL`` as an ``UploadProgress``."""
    for row in plans:
        plan = UploadPlan(
            source_id=int(row["source_id"]),
            identity=str(row["identity"]),
            size=int(row["size"]),
            chunk_size=int(row["chunk_size"]),
        )
        records = tuple(
            ChunkRecord(
                seq=int(c["seq"]),
                offset=int(c["byte_offset"]),
                length=int(c["length"]),
                digest=str(c["digest"]),
            )
            for c in chunks
        )
        return UploadProgress(plan, records)
    return None


PLAN_SQL = "SELECT source_id, identity, size, chunk_size FROM job_uploads WHERE job_id = ?"
CHUNKS_SQL = (
    "SELECT seq, byte_offset, length, digest FROM job_upload_chunks WHERE job_id = ? ORDER BY seq"
)
