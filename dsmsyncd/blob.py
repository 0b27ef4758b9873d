"""The bytes of one file, read by range: what the uploader sees of a source.

The pipeline knows nothing of how a file was found; it reads ranges through this
interface, which a local file and a bucket object both provide. Ranged reads keep
memory bounded by (chunk size x chunks in flight), whatever the file size.

A blob is the content of one *identity* (size + mtime, or ETag + size). A read that
finds other content raises ``BlobChanged`` and one that finds nothing raises
``BlobVanished``, rather than mixing bytes of two versions into one upload::

    BlobGone             the identity can no longer be read; do not retry it
     ├── BlobChanged     overwritten: the new content is a new identity, a new job
     └── BlobVanished    deleted (a bucket object; a local file that vanished raises
                         FileNotFoundError, which the pipeline quarantines with a report)
    BlobUnreadable       (an OSError) there but cannot be opened or read: retried a few
                         times, then quarantined
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

HASH_READ_BYTES = 1024 * 1024


class BlobGone(Exception):
    """The content this blob stands for can no longer be read; ``reason`` says why."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}, {self.reason!r})"


class BlobChanged(BlobGone):
    """The file or object was rewritten since its identity was taken."""


class BlobVanished(BlobGone):
    """The object was deleted since its identity was taken."""


class BlobUnreadable(OSError):
    """The file is there but cannot be opened or read (permissions, not a regular file,
    an I/O error). It may heal (an operator fixes the permissions), so the job retries,
    a limited number of times (``[limits] max_read_attempts``), then quarantines it."""


class Blob(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def identity(self) -> str:
        """Changes whenever the content may have changed (path + size + mtime, or key + ETag)."""
        ...

    @property
    def version_pinned(self) -> bool:
        """True when every read is refused once the content changes (an object read with
        ``If-Match: <ETag>``); False when the identity can stay while the bytes change (a
        file rewritten in place keeping its size and mtime). A resumed upload checks
        every recorded chunk of an unpinned blob, a sample of a pinned one."""
        ...

    async def read_range(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (the header check and the content hash read so)."""
        ...

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the bytes at ``offset``: the uploader reuses one buffer per
        worker, which keeps a 1 GB upload from allocating (and page-faulting in) a fresh
        chunk-sized block for every chunk (measured in bench/RESULTS.md). A blob that can
        only read by range fills it from ``read_range``."""
        ...


@dataclass(frozen=True)
class LocalFileBlob:
    """A local file read with ``os.pread`` in a worker thread, never whole."""

    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def open(cls, path: Path) -> LocalFileBlob:
        st = path.stat()
        return cls(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def identity(self) -> str:
        return f"file:{self.path}:{self.size}:{self.mtime_ns}"

    @property
    def version_pinned(self) -> bool:
        return False  # size and mtime can be kept by a rewrite (cp -p, rsync -t, utime)

    async def read_range(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``; ``BlobChanged`` if size or mtime moved since open."""
        return await asyncio.to_thread(self._pread, offset, length)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Fill ``buffer`` with the bytes at ``offset``, read straight into it."""
        await asyncio.to_thread(self._preadinto, offset, buffer)

    def _pread(self, offset: int, length: int) -> bytes:
        buffer = bytearray(length)
        self._preadinto(offset, memoryview(buffer))
        return bytes(buffer)

    def _preadinto(self, offset: int, buffer: memoryview) -> None:
        try:
            # O_NONBLOCK: a FIFO put in the file's place must fail the read, not hang it.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise BlobUnreadable(exc.errno, f"cannot open: {exc.strerror}", str(self.path)) from exc
        try:
            # Checked on the descriptor read from: its size and mtime are those of the
            # bytes returned, whether the file was rewritten in place or renamed over.
            st = os.fstat(fd)
            if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns):
                raise BlobChanged(
                    str(self.path),
                    f"rewritten while being read (size {self.size} -> {st.st_size}, "
                    f"mtime_ns {self.mtime_ns} -> {st.st_mtime_ns})",
                )
            done = 0
            while done < len(buffer):
                try:
                    count = os.preadv(fd, [buffer[done:]], offset + done)
                except OSError as exc:
                    raise BlobUnreadable(
                        exc.errno, f"cannot read: {exc.strerror}", str(self.path)
                    ) from exc
                if count == 0:
                    raise BlobChanged(str(self.path), "shorter than when it was opened")
                done += count
        finally:
            os.close(fd)


async def sha256_of(blob: Blob) -> str:
    """SHA-256 of a blob by ranged reads: memory stays at one read whatever the size."""
    digest = hashlib.sha256()
    for offset in range(0, blob.size, HASH_READ_BYTES):
        data = await blob.read_range(offset, min(HASH_READ_BYTES, blob.size - offset))
        await asyncio.to_thread(digest.update, data)
    return digest.hexdigest()
