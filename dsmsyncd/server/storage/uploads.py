"""Assembling a source's bytes on disk from chunks or from one whole-body upload.

Clients cut a file into chunks, send them concurrently and in any order, then commit
(digest §3d). Each chunk is streamed from the request to its own file named after its
``seq_num`` and ``byte_offset`` under ``{uploads_dir}/{source_id}/``; the directory
listing *is* the upload's state, so a resent chunk simply replaces its file and a
server restart loses nothing that was acknowledged. Commit checks that chunks
``0..last`` tile ``[0, total)`` exactly and concatenates them with a kernel-side copy
in a worker thread: no chunk or file is ever held whole in memory (invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dsmsyncd.server import pause_points
from dsmsyncd.server.errors import ApiError

FINAL_NAME = "source.bin"
_CHUNK_RE = re.compile(r"^chunk-(\d+)-(\d+)\.bin$")
_READ_SIZE = 256 * 1024


@dataclass(frozen=True)
class ChunkInfo:
    """One received chunk: where it claims to sit in the file and how long it is."""

    seq_num: int
    byte_offset: int
    length: int

    @property
    def end_byte_offset(self) -> int:
        return self.byte_offset + self.length


def source_dir(uploads_dir: Path, source_id: int) -> Path:
    return uploads_dir / str(source_id)


def final_path(uploads_dir: Path, source_id: int) -> Path:
    """Where a source's complete bytes live once committed or uploaded whole."""
    return source_dir(uploads_dir, source_id) / FINAL_NAME


async def write_chunk(
    uploads_dir: Path,
    source_id: int,
    seq_num: int,
    byte_offset: int,
    body: AsyncIterable[bytes],
) -> ChunkInfo:
    """Stream one chunk to its own file; a resend of the same ``seq_num`` replaces it.

    The bytes go to a uniquely named temporary file first and are renamed into place
    only when complete, so a client that drops mid-chunk leaves no half chunk behind
    and two concurrent sends of one chunk cannot interleave.
    """
    if seq_num < 0 or byte_offset < 0:
        raise ApiError(400, "seq_num and byte_offset must not be negative")
    directory = source_dir(uploads_dir, source_id)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    length = await _stream_to(directory, f"chunk-{seq_num}-{byte_offset}.bin", body)
    await asyncio.to_thread(_drop_other_offsets, directory, seq_num, byte_offset)
    return ChunkInfo(seq_num, byte_offset, length)


async def write_whole(uploads_dir: Path, source_id: int, body: AsyncIterable[bytes]) -> int:
    """Stream a single-shot upload (``POST /source/{id}`` with the file) to the final file."""
    directory = source_dir(uploads_dir, source_id)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    return await _stream_to(directory, FINAL_NAME, body)


async def commit(uploads_dir: Path, source_id: int, last_seq: int, total: int) -> int:
    """Join chunks ``0..last_seq`` into the final file and return its size.

    Raises a 400 that names the first gap, overlap or missing chunk, so a client
    knows which chunk to resend.
    """
    directory = source_dir(uploads_dir, source_id)
    chunks = await asyncio.to_thread(list_chunks, directory)
    plan = check_tiling(chunks, last_seq, total)
    await asyncio.to_thread(_concatenate, directory, plan)
    return total


def list_chunks(directory: Path) -> dict[int, ChunkInfo]:
    """The chunks received so far, by ``seq_num``."""
    found: dict[int, ChunkInfo] = {}
    if not directory.is_dir():
        return found
    for entry in os.scandir(directory):
        match = _CHUNK_RE.match(entry.name)
        if match is None:
            continue
        seq, offset = int(match.group(1)), int(match.group(2))
        found[seq] = ChunkInfo(seq, offset, entry.stat().st_size)
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


async def _stream_to(directory: Path, name: str, body: AsyncIterable[bytes]) -> int:
    tmp = directory / f".{name}.{uuid.uuid4().hex}.tmp"
    handle = await asyncio.to_thread(open, tmp, "wb")
    length = 0
    try:
        async for piece in body:
            await asyncio.to_thread(handle.write, piece)
            if not length:
                await asyncio.to_thread(handle.flush)
                await pause_points.pause(pause_points.UPLOAD_MID_CHUNK)
            length += len(piece)
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, tmp, directory / name)
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return length


def remove_partial_writes(uploads_dir: Path) -> int:
    """Remove the temporary files of writes a killed server left (how many): at start,
    before any request, so none of them is being written. Without this, each chunk cut
    by a kill -9 stayed on disk for good."""
    removed = 0
    for tmp in uploads_dir.glob("*/.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def _drop_other_offsets(directory: Path, seq_num: int, keep_offset: int) -> None:
    """A resend of a chunk at a different offset supersedes the earlier one."""
    for entry in os.scandir(directory):
        match = _CHUNK_RE.match(entry.name)
        if match and int(match.group(1)) == seq_num and int(match.group(2)) != keep_offset:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def _concatenate(directory: Path, plan: list[ChunkInfo]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{FINAL_NAME}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as out:
        for chunk in plan:
            path = directory / f"chunk-{chunk.seq_num}-{chunk.byte_offset}.bin"
            with open(path, "rb") as src:
                _copy(src, out, chunk.length)
    os.replace(tmp, directory / FINAL_NAME)
    for chunk in plan:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(directory / f"chunk-{chunk.seq_num}-{chunk.byte_offset}.bin")


def _copy(src: BinaryIO, out: BinaryIO, length: int) -> None:
    """Kernel-side copy where the platform has it, a buffered copy otherwise."""
    sent = 0
    try:
        while sent < length:
            n = os.sendfile(out.fileno(), src.fileno(), sent, length - sent)
            if n == 0:
                break
            sent += n
    except OSError:
        if sent:
            raise
        shutil.copyfileobj(src, out, 1024 * 1024)


async def copy_bytes(src: Path, dst: Path) -> None:
    """Give a re-parsed source its own copy of the original bytes (a hard link if possible)."""

    def _link() -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)

    await asyncio.to_thread(_link)


async def remove(uploads_dir: Path, source_id: int) -> None:
    """Delete everything a source uploaded."""
    await asyncio.to_thread(shutil.rmtree, source_dir(uploads_dir, source_id), True)


async def remove_partial(uploads_dir: Path, source_id: int) -> None:
    """Delete a source's chunks and half-written files, keeping complete bytes if any.

    A cancelled source keeps ``source.bin`` when it has one (it can still be downloaded
    or re-parsed with new options); with nothing complete left the directory goes too.
    """

    def _remove() -> None:
        directory = source_dir(uploads_dir, source_id)
        if not directory.is_dir():
            return
        for entry in os.scandir(directory):
            if entry.name != FINAL_NAME:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        with contextlib.suppress(OSError):  # not empty: the complete bytes stay
            directory.rmdir()

    await asyncio.to_thread(_remove)
