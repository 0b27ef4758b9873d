"""An upload chunk as a request body: sent in slices, never copied, never warned about.

aiohttp's own bytes payload writes a body in one call and, above 1 MiB, raises a
``ResourceWarning`` ("might lock the event loop") at construction — an exception
wherever warnings are errors, which made every chunk of a large file fail. A chunk
is written here in ``SLICE`` pieces of a memoryview, each awaited, so the event loop
keeps serving between them and the chunk's buffer is never copied.

With a ``pace`` (the daemon's ``TokenBucket.take``), each slice is paid for before it
is written: that is where ``[limits] max_upload_rate`` holds (``rate_limit.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

SLICE = 256 * 1024
Pace = Callable[[int], Awaitable[None]]


class ChunkPayload(Payload):
    def __init__(
        self,
        value: bytes | memoryview,
        content_type: str,
        pace: Pace | None = None,
        **kwargs: Any,
    ) -> None:
        view = memoryview(value).cast("B")
        super().__init__(view, content_type=content_type, **kwargs)
        self._view = view
        self._nbytes = view.nbytes
        self._size = view.nbytes
        self._pace = pace

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return bytes(self._view).decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        end = self._nbytes if content_length is None else min(content_length, self._nbytes)
        for start in range(0, end, SLICE):
            piece = self._view[start : min(start + SLICE, end)]
            if self._pace is not None:
                await self._pace(piece.nbytes)
            await writer.write(piece)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return bytes(self._view)
