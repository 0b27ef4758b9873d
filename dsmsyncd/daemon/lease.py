"""A resource the daemon replaces on reload, kept open for the jobs still using it.

A SIGHUP may replace the target's client or a source (whose S3 client a bucket job
reads its object from). Jobs already running keep what they started with: a job's
revision lives on the target it was opened on, and its upload reads ranges of the
object through its source's client until the last chunk. ``Lease`` counts those
jobs, and ``retire`` closes the resource once the last of them is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lease(Generic[T]):
    """``resource`` and the number of jobs using it; ``close`` ends it once it is retired."""

    def __init__(self, resource: T, close: Callable[[], Awaitable[None]]) -> None:
        self.resource = resource
        self.users = 0
        self._close = close
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[T]:
        """Hold the resource open for the length of the block (a job's run)."""
        self.users += 1
        self._idle.clear()
        try:
            yield self.resource
        finally:
            self.users -= 1
            if self.users == 0:
                self._idle.set()

    async def retire(self) -> None:
        """Close the resource once no job uses it (at once if none does)."""
        await self._idle.wait()
        await self._close()
