"""The bytes of one file, read by range: what the uploader sees of a source.

The pipeline knows nothing of how a file was found; it reads ranges through this
interface, which a local file and a bucket object both provide. Ranged reads keep
memory bounded by (chunk size x chunks in flight), whatever the file size.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Blob(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def name(self) -> str: ...

    @property
    def identity(self) -> str:
        """Changes whenever the content may have changed (path + size + mtime, or key + ETag)."""
        ...

    async def read_range(self, offset: int, length: int) -> bytes: ...


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

    async def read_range(self, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(_pread, self.path, offset, length)


def _pread(path: Path, offset: int, length: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        parts: list[bytes] = []
        remaining = length
        while remaining > 0:
            piece = os.pread(fd, remaining, offset + (length - remaining))
            if not piece:
                raise OSError(f"{path} is shorter than expected: the file changed while uploading")
            parts.append(piece)
            remaining -= len(piece)
        return b"".join(parts)
    finally:
        os.close(fd)
