"""Concurrent chunked upload of one Blob: initiate → N parallel chunks → commit.

Chunks are read by range just before they are sent, so memory holds at most
``parallelism`` chunks whatever the file size (invariant 3). Parallelism and chunk
size never exceed what the server asked for in ``initiate`` (digest §3d), and a
shared semaphore lets the daemon cap chunks in flight across all uploads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from dsmsyncd.blob import Blob
from dsmsyncd.dsmapi import DsmapiClient, Source

ProgressCallback = Callable[[int], None]

_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".zip": "application/zip",
    ".geojson": "application/vnd.geo+json",
    ".json": "application/vnd.geo+json",
    ".kml": "application/vnd.google-earth.kml+xml",
}


def content_type_for(name: str) -> str:
    """The upload's content type, from the file name's suffix (CSV when unknown)."""
    return _CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "text/csv")


@dataclass(frozen=True)
class UploadResult:
    chunks: int
    bytes_sent: int
    source: Source


def plan_chunks(size: int, chunk_size: int) -> list[tuple[int, int, int]]:
    """(seq_num, byte_offset, length) for every chunk; an empty file has none."""
    if chunk_size <= 0:
        raise ValueError("chunk size must be positive")
    return [
        (seq, offset, min(chunk_size, size - offset))
        for seq, offset in enumerate(range(0, size, chunk_size))
    ]


async def upload_blob(
    client: DsmapiClient,
    source: Source,
    blob: Blob,
    *,
    content_type: str = "text/csv",
    max_chunk_size: int | None = None,
    max_parallelism: int | None = None,
    global_limit: asyncio.Semaphore | None = None,
    on_progress: ProgressCallback | None = None,
) -> UploadResult:
    prefs = await client.initiate_upload(source, content_type)
    chunk_size = min(prefs.chunk_size, max_chunk_size or prefs.chunk_size)
    parallelism = max(1, min(prefs.parallelism, max_parallelism or prefs.parallelism))
    chunks = plan_chunks(blob.size, chunk_size)
    pending = iter(chunks)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        # One buffer per worker, reused for every chunk it sends (see Blob.read_into).
        buffer = memoryview(bytearray(chunk_size if chunks else 0))
        for seq, offset, length in pending:
            if global_limit is not None:
                await global_limit.acquire()
            try:
                data = buffer[:length]
                await blob.read_into(offset, data)
                await client.upload_chunk(source, seq, offset, data)
            finally:
                if global_limit is not None:
                    global_limit.release()
            sent += length
            if on_progress is not None:
                on_progress(length)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallelism, max(1, len(chunks)))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        # The first chunk that failed says why; the other workers were cancelled by
        # the group. Callers branch on our error types, never on exception groups.
        raise _first_cause(failed) from failed

    last_seq = chunks[-1][0] if chunks else 0
    committed = await client.commit_upload(source, last_seq, blob.size)
    return UploadResult(chunks=len(chunks), bytes_sent=sent, source=committed)


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_cause(first) if isinstance(first, BaseExceptionGroup) else first
