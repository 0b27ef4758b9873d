"""A chunked upload written once: every chunk straight to its byte offset in one file.

Clients cut a file into chunks, send them concurrently and in any order, then commit
(digest §3d). Each chunk is streamed from the request into ``{source_id}/upload.part``
at its ``byte_offset`` with positional writes (``os.pwrite`` in a worker thread), so the
bytes land where they belong the first time: commit copies nothing, it checks and
renames (issue 9; before, each chunk had its own file and commit joined them, so every
byte was written twice). A file of N bytes costs N bytes written, whatever its chunking.

Which chunks arrived is kept in a journal beside it, ``chunks.log``: one short line
when a send of a chunk starts (``"3 -"``: chunk 3 is not received while its bytes are
being replaced) and one when it has been written whole (``"3 12582912 4194304"``:
``seq_num byte_offset length``). Replaying it, the last line of a ``seq_num`` wins, so
a resent chunk replaces the first one and a chunk resent at another offset supersedes
it. The journal is appended before the chunk is acknowledged and survives a server
restart as the file does, so an acknowledged chunk is never lost (the daemon's
resumable upload relies on that), while a chunk cut off mid-body (a dropped client, a
``kill -9`` at the ``upload-mid-chunk`` pause point) was never journalled as received:
the client is told to resend it at commit. A resend cut off mid-body leaves that chunk
not received either, since its bytes may be half replaced.

Two sends of one chunk may run at once (a client's retry while its first send still
arrives, see ``chunk_gate.py``); with the same bytes, as a retry has, each is answered
and the file is right. A client that sends *other* bytes for a chunk while its first
send is still arriving may get a mix of both (the chunk-per-file design before kept
whichever finished last); sent one after the other, the last one wins whole.

Commit checks that chunks ``0..last`` tile ``[0, total)`` exactly (the same check and the
same messages as before), trims anything past ``total`` and renames the file into
place. No chunk or file is ever held whole in memory (invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path

from dsmsyncd.server import pause_points
from dsmsyncd.server.errors import ApiError
from dsmsyncd.server.storage.chunk_gate import ChunkGates
from dsmsyncd.server.storage.uploads import FINAL_NAME, source_dir

PART_NAME = "upload.part"
JOURNAL_NAME = "chunks.log"
_BATCH = 1024 * 1024  # bytes gathered from the body before one positional write


@dataclass(frozen=True)
class ChunkInfo:
    """One received chunk: where it claims to sit in the file and how long it is."""

    seq_num: int
    byte_offset: int
    length: int

    @property
    def end_byte_offset(self) -> int:
        return self.byte_offset + self.length


async def write_chunk(
    uploads_dir: Path,
    gates: ChunkGates,
    source_id: int,
    seq_num: int,
    byte_offset: int,
    body: AsyncIterable[bytes],
) -> ChunkInfo:
    """Stream one chunk to its offset in the source's file; journal it once it is whole."""
    if seq_num < 0 or byte_offset < 0:
        raise ApiError(400, "seq_num and byte_offset must not be negative")
    directory = source_dir(uploads_dir, source_id)
    async with gates.writing(source_id, seq_num) as gate:
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        async with gate.record_lock:
            await _in_thread(_append, directory, f"{seq_num} -\n")
        length = await _write_at(directory / PART_NAME, byte_offset, body)
        async with gate.record_lock:
            await _in_thread(_append, directory, f"{seq_num} {byte_offset} {length}\n")
    return ChunkInfo(seq_num, byte_offset, length)


async def commit(
    uploads_dir: Path, gates: ChunkGates, source_id: int, last_seq: int, total: int
) -> int:
    """Make chunks ``0..last_seq`` the source's file and return its size.

    Raises a 400 (``upload_incomplete``) that names the first gap, overlap or missing
    chunk, so a client knows which chunk to resend.
    """
    directory = source_dir(uploads_dir, source_id)
    async with gates.committing(source_id) as gate:
        gate.stop_sends_of(set(await asyncio.to_thread(received, directory)))
        await gate.writers_done()
        await asyncio.to_thread(_finish, directory, last_seq, total)
    return total


def received(directory: Path) -> dict[int, ChunkInfo]:
    """The chunks received whole so far, by ``seq_num`` (the journal replayed)."""
    try:
        text = (directory / JOURNAL_NAME).read_text("ascii", errors="replace")
    except FileNotFoundError:
        return {}
    found: dict[int, ChunkInfo] = {}
    # The last element is "" after a final newline, or a line a crash cut short: skipped.
    for line in text.split("\n")[:-1]:
        fields = line.split()
        if len(fields) == 2 and fields[0].isdigit() and fields[1] == "-":
            found.pop(int(fields[0]), None)
        elif len(fields) == 3 and all(f.isdigit() for f in fields):
            seq, offset, length = (int(f) for f in fields)
            found[seq] = ChunkInfo(seq, offset, length)
    return found


def check_tiling(chunks: dict[int, ChunkInfo], last_seq: int, total: int) -> list[ChunkInfo]:
    """Chunks ``0..last_seq`` in order, if they cover ``[0, total)`` with no gap or overlap."""
    if last_seq < 0 or total < 0:
        raise ApiError(400, "commit seq_num and byte_offset must not be negative")
    if not chunks and last_seq == 0 and total == 0:
        return []  # an empty file: no chunk is needed to describe it
    extra = sorted(seq for seq in chunks if seq > last_seq)
    if extra:
        raise ApiError(
            400,
            f"chunk {extra[0]} was received but the commit names chunk {last_seq} as the last",
            key="upload_incomplete",
        )
    plan: list[ChunkInfo] = []
    expected = 0
    for seq in range(last_seq + 1):
        chunk = chunks.get(seq)
        if chunk is None:
            raise ApiError(
                400,
                f"chunk {seq} of 0..{last_seq} was never received; resend it, then commit",
                key="upload_incomplete",
            )
        if chunk.byte_offset != expected:
            raise ApiError(400, _mismatch(chunk, plan, expected), key="upload_incomplete")
        plan.append(chunk)
        expected = chunk.end_byte_offset
    if expected != total:
        raise ApiError(
            400,
            f"chunks 0..{last_seq} end at byte {expected} but the commit says the file has "
            f"{total} bytes",
            key="upload_incomplete",
        )
    return plan


def _mismatch(chunk: ChunkInfo, plan: list[ChunkInfo], expected: int) -> str:
    start = chunk.byte_offset
    if not plan:
        return f"chunk 0 starts at byte {start}, not 0: bytes 0-{start} missing"
    prev = plan[-1].seq_num
    if start > expected:
        return (
            f"chunk {chunk.seq_num} starts at byte {start} but chunk {prev} ends at byte "
            f"{expected}: bytes {expected}-{start} missing"
        )
    return (
        f"chunk {chunk.seq_num} starts at byte {start} but chunk {prev} ends at byte "
        f"{expected}: bytes {start}-{expected} sent twice"
    )


async def _write_at(path: Path, start: int, body: AsyncIterable[bytes]) -> int:
    """Write the body's pieces one after the other from byte ``start`` of ``path``.

    The first piece is written alone (the ``upload-mid-chunk`` pause point follows it);
    the rest go in batches of about ``_BATCH`` bytes, one worker-thread hop and one
    ``pwritev`` each instead of one per 256 KiB read: a quarter of the hops.
    """
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT, 0o644)
    position = start
    batch: list[bytes] = []
    batched = 0
    try:
        async for piece in body:
            if position == start and not batch:
                await _in_thread(_pwrite_all, fd, [piece], position)
                await pause_points.pause(pause_points.UPLOAD_MID_CHUNK)
                position += len(piece)
                continue
            batch.append(piece)
            batched += len(piece)
            if batched >= _BATCH:
                await _in_thread(_pwrite_all, fd, batch, position)
                position, batch, batched = position + batched, [], 0
        if batch:
            await _in_thread(_pwrite_all, fd, batch, position)
            position += batched
    finally:
        os.close(fd)
    return position - start


async def _in_thread(work: Callable[..., None], *args: object) -> None:
    """Run ``work`` in a worker thread and wait for it to end, even when cancelled.

    A send of a chunk already received is stopped by a commit
    (``ChunkGate.stop_sends_of``). A thread cannot be stopped, so the cancel waits for
    its write or journal line to end before it goes on: no byte or line of the stopped
    send lands after the commit checked the file, and the file descriptor is never
    closed under it.
    """
    job = asyncio.ensure_future(asyncio.to_thread(work, *args))
    try:
        await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([job])
        raise


def _pwrite_all(fd: int, pieces: list[bytes], position: int) -> None:
    """``os.pwritev`` until every byte is written (it may write fewer than asked)."""
    written = os.pwritev(fd, pieces, position)
    total = sum(len(p) for p in pieces)
    if written < total:
        rest = memoryview(b"".join(pieces))[written:]
        position += written
        while rest:
            n = os.pwrite(fd, rest, position)
            rest, position = rest[n:], position + n


def _append(directory: Path, line: str) -> None:
    """One journal line in one ``write`` to an append-only file: never interleaved."""
    fd = os.open(directory / JOURNAL_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("ascii"))
    finally:
        os.close(fd)


def _finish(directory: Path, last_seq: int, total: int) -> None:
    """Check the journal against the commit, then trim and rename the file into place."""
    part, final = directory / PART_NAME, directory / FINAL_NAME
    if not part.exists() and final.is_file() and final.stat().st_size == total:
        return  # an earlier commit renamed it and stopped before the source was saved
    check_tiling(received(directory), last_seq, total)
    directory.mkdir(parents=True, exist_ok=True)
    with open(part, "ab") as handle:  # an empty file has no chunk to create it
        size = handle.tell()
    if size < total:
        raise ApiError(
            400,
            f"the received chunks hold {size} of {total} bytes on the server (its upload "
            "directory was changed); resend every chunk, then commit",
            key="upload_incomplete",
        )
    os.truncate(part, total)
    os.replace(part, final)
    (directory / JOURNAL_NAME).unlink(missing_ok=True)
