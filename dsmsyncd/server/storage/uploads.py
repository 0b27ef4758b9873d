"""A source's bytes on disk: where they live, a whole-body upload, copies and removal.

Every source has a directory ``{uploads_dir}/{source_id}/`` whose complete bytes are
``source.bin``. A whole-body upload (or a fetched ``url`` source) is streamed to a
temporary file renamed into place when complete; a chunked upload writes its chunks at
their offsets into one file that its commit renames into place (``chunks.py``). No
file is ever held whole in memory (invariant 3).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterable
from pathlib import Path

from dsmsyncd.server import pause_points

FINAL_NAME = "source.bin"


def source_dir(uploads_dir: Path, source_id: int) -> Path:
    return uploads_dir / str(source_id)


def final_path(uploads_dir: Path, source_id: int) -> Path:
    """Where a source's complete bytes live once committed or uploaded whole."""
    return source_dir(uploads_dir, source_id) / FINAL_NAME


async def write_whole(uploads_dir: Path, source_id: int, body: AsyncIterable[bytes]) -> int:
    """Stream a single-shot upload (``POST /source/{id}`` with the file) to the final file."""
    directory = source_dir(uploads_dir, source_id)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    return await _stream_to(directory, FINAL_NAME, body)


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
    before any request, so none of them is being written. Without this, each whole-body
    upload cut by a kill -9 stayed on disk for good. (A chunk cut short needs nothing:
    it was never journalled as received, and a resend overwrites its bytes.)"""
    removed = 0
    for tmp in uploads_dir.glob("*/.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


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
    """Delete a source's received chunks (the upload file and its journal) and
    half-written files, keeping complete bytes if any.

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
