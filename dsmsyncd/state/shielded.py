"""Writes that a cancelled caller cannot tear: one rule for every state store.

Each write runs as a task of its own, awaited through ``asyncio.shield`` (as arq's
``run_job`` shields ``finish_job``): a cancelled caller stops waiting, but the
transaction still commits or rolls back whole, and ``drain`` lets ``close()`` wait
for every write still in flight before the connection goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger("dsmsyncd.state")

T = TypeVar("T")


class ShieldedWrites:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, write: Coroutine[Any, Any, T]) -> T:
        """Run ``write`` to its end whatever happens to the caller; its result."""
        task = asyncio.get_running_loop().create_task(write)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Wait for every write in flight (being cancelled here cancels none of them)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Retrieve the outcome even when the caller was cancelled and is no longer waiting,
        # so asyncio does not report it as "never retrieved".
        if not task.cancelled() and task.exception() is not None:
            logger.debug("state write failed: %r", task.exception())
