"""Blobs the tests make: bytes in memory, and a wrapper that puts a seam before a read."""

from __future__ import annotations

from dataclasses import dataclass

from dsmsyncd.blob import Blob


@dataclass(frozen=True)
class BytesBlob:
    """An in-memory Blob for seeding datasets."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def identity(self) -> str:
        return f"bytes:{self.name}:{len(self.data)}"

    @property
    def version_pinned(self) -> bool:
        return True  # immutable bytes

    async def read_range(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = self.data[offset : offset + len(buffer)]


class DelegatingBlob:
    """Reads through to ``inner``; a test overrides ``read_range`` to act before a read."""

    def __init__(self, inner: Blob) -> None:
        self.inner = inner

    @property
    def size(self) -> int:
        return self.inner.size

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def version_pinned(self) -> bool:
        return self.inner.version_pinned

    async def read_range(self, offset: int, length: int) -> bytes:
        return await self.inner.read_range(offset, length)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        """Through ``read_range``, so that a test's seam there sees every read."""
        buffer[:] = await self.read_range(offset, len(buffer))
