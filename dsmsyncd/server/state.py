"""What every request handler of the local server shares, built once at startup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dsmsyncd.server.catalog.metastore import MetaStore

if TYPE_CHECKING:
    from dsmsyncd.server.storage.rowstore import RowStore

logger = logging.getLogger("dsmsyncd.server.state")

# The upload shape the server asks clients for (digest §3d): maxima, not requirements.
PREFERRED_CHUNK_SIZE = 4 * 1024 * 1024
PREFERRED_UPLOAD_PARALLELISM = 4


@dataclass
class ServerState:
    data_dir: Path
    meta: MetaStore
    rows: RowStore
    preferred_chunk_size: int = PREFERRED_CHUNK_SIZE
    preferred_upload_parallelism: int = PREFERRED_UPLOAD_PARALLELISM
    # None: no limit. Checked while bytes stream in, so a too-large upload never lands.
    max_upload_bytes: int | None = None
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run server-side work (parsing, transforms, apply) after the response is sent.

        The task is kept referenced until it ends, and a crash is logged rather than lost;
        the work itself records its failure on the resource it was working on.
        """
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self) -> None:
        """Wait for background work, so nothing is cut mid-write.

        Work spawned while waiting (a parse's transform, a cleanup) is waited for too.
        Cancelling the wait (shutdown's time limit) leaves the tasks running:
        ``asyncio.wait`` does not cancel what it waits for, unlike ``gather``.
        """
        while self._background:
            await asyncio.wait(list(self._background))

    async def cancel_background(self) -> None:
        """Cancel what is still running (shutdown after the drain's time limit).

        Parsing and transforms pick up again at the next start (``processing_resume``),
        and so does an apply cut short (``apply_resume``), so cancelling loses no data;
        a row-store statement already running in a worker thread still runs to its end.
        """
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def running(self, name: str) -> list[asyncio.Task[Any]]:
        """Background tasks spawned under ``name`` that have not ended yet.

        Cleanup waits for these (a parse still writing ``in_{id}`` would otherwise
        recreate the table it just dropped).
        """
        return [t for t in self._background if t.get_name() == name and not t.done()]

    def running_with_prefix(self, prefix: str) -> list[asyncio.Task[Any]]:
        return [t for t in self._background if t.get_name().startswith(prefix) and not t.done()]


STATE: web.AppKey[ServerState] = web.AppKey("dsmsyncd_state", ServerState)
