"""Concurrent chunked upload of one Blob: initiate → N parallel chunks → commit.

Chunks are read by range just before they are sent, so memory holds at most
``parallelism`` chunks whatever the file size (invariant 3). Parallelism and chunk
size never exceed what the server asked for in ``initiate`` (digest §3d), and a
shared semaphore lets the daemon cap chunks in flight across all uploads.

With an ``UploadJournal`` every chunk the server acknowledged is reported with the
digest of its bytes (``chunk_digest``), and an upload given a ``ResumePoint`` sends
only the chunks not in it, cut with the chunk size of the first attempt: that is
how a restarted job resumes (``upload_resume.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from dsmsyncd.blob import Blob
from dsmsyncd.dsmapi import DsmapiClient, Source
from dsmsyncd.state import ChunkRecord

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
    # Chunks a resumed upload did not send again (the server had acknowledged them).
    skipped_chunks: int = 0
    # The journal was told of this upload (``journal_for``): it has a record to forget.
    journaled: bool = False


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed upload starts: its first attempt's chunk size and the seqs the
    server acknowledged then. No ``chunk_size``: nothing was recorded, cut afresh."""

    chunk_size: int | None
    done: AbstractSet[int] = field(default_factory=frozenset)


class UploadJournal(Protocol):
    """Where an upload reports its plan and each acknowledged chunk (the state store)."""

    async def planned(self, chunk_size: int) -> None:
        """The chunk size is fixed; no chunk was sent yet."""
        ...

    async def acknowledged(self, chunk: ChunkRecord) -> None:
        """The server answered this chunk with success."""
        ...


def chunk_digest(data: bytes | memoryview) -> str:
    """BLAKE2b-128 of a chunk's bytes, hex: fast, and ample to tell two versions apart."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# What a server asks for in ``initiate`` is known only after the revision and source
# are created; the connections warmed meanwhile (``connections_to_warm``) guess it as
# the local server's and DSMAPI's usual answer. A wrong guess costs a spare connection
# (idle, closed after the keep-alive) or a handshake paid later, as without warming.
GUESSED_CHUNK_SIZE = 4 * 1024 * 1024
GUESSED_PARALLELISM = 4


def connections_to_warm(size: int) -> int:
    """Connections the chunks of an upload of ``size`` bytes take at once; 0 for one
    chunk (it goes on the connection of the requests before it, as they all do)."""
    chunks = -(-size // GUESSED_CHUNK_SIZE)
    return min(GUESSED_PARALLELISM, chunks) if chunks > 1 else 0


@contextlib.asynccontextmanager
async def connections_warmed(client: DsmapiClient, size: int) -> AsyncIterator[None]:
    """The block (opening the revision and its source) runs while the connections an
    upload of ``size`` bytes will take are opened (``DsmapiClient.warm``); on leaving,
    they are ready. If the block fails, the warming is cancelled, not waited for (a
    server that does not answer would hold the job up to the connect timeout)."""
    warming = asyncio.create_task(client.warm(connections_to_warm(size)))
    try:
        yield
    except BaseException:
        warming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await warming
        raise
    await warming  # done by now: its handshakes take less than the block's requests


def journal_for(
    journal: UploadJournal | None, chunks: int, resume: ResumePoint | None
) -> UploadJournal | None:
    """The journal an upload of ``chunks`` chunks reports to: none for a fresh upload
    of one chunk. Its record would cost two commits of the state store (the plan, the
    chunk), each synced to disk, to save resending one chunk after a crash, which a
    resumed upload without a record does (``upload_resume.examine``); a small file is
    one chunk, and two of a small file's thirteen commits were these (issue 9)."""
    return journal if chunks > 1 or resume is not None else None


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
    journal: UploadJournal | None = None,
    resume: ResumePoint | None = None,
) -> UploadResult:
    prefs = await client.initiate_upload(source, content_type)
    if resume is not None and resume.chunk_size is not None:
        chunk_size = resume.chunk_size  # the recorded chunks were cut so: cut alike
    else:
        chunk_size = min(prefs.chunk_size, max_chunk_size or prefs.chunk_size)
    chunks = plan_chunks(blob.size, chunk_size)
    journal = journal_for(journal, len(chunks), resume)
    if journal is not None and (resume is None or resume.chunk_size is None):
        await journal.planned(chunk_size)
    parallelism = max(1, min(prefs.parallelism, max_parallelism or prefs.parallelism))
    done = resume.done if resume is not None else frozenset()
    to_send = [chunk for chunk in chunks if chunk[0] not in done]
    pending = iter(to_send)
    sent = 0

    async def worker() -> None:
        nonlocal sent
        # One buffer per worker, reused for every chunk it sends (see Blob.read_into).
        buffer = memoryview(bytearray(chunk_size if to_send else 0))
        for seq, offset, length in pending:
            if global_limit is not None:
                await global_limit.acquire()
            try:
                data = buffer[:length]
                await blob.read_into(offset, data)
                digest = await asyncio.to_thread(chunk_digest, data) if journal else ""
                await client.upload_chunk(source, seq, offset, data)
            finally:
                if global_limit is not None:
                    global_limit.release()
            if journal is not None:
                await journal.acknowledged(ChunkRecord(seq, offset, length, digest))
            sent += length
            if on_progress is not None:
                on_progress(length)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(parallelism, max(1, len(to_send)))):
                group.create_task(worker())
    except BaseExceptionGroup as failed:
        # The first chunk that failed says why; the other workers were cancelled by
        # the group. Callers branch on our error types, never on exception groups.
        raise _first_cause(failed) from failed

    last_seq = chunks[-1][0] if chunks else 0
    committed = await client.commit_upload(source, last_seq, blob.size)
    return UploadResult(
        chunks=len(to_send),
        bytes_sent=sent,
        source=committed,
        skipped_chunks=len(chunks) - len(to_send),
        journaled=journal is not None,
    )


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_cause(first) if isinstance(first, BaseExceptionGroup) else first
