"""What every request handler of the local server shares, built once at startup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dsmsyncd.server.metastore import MetaStore

if TYPE_CHECKING:
    from dsmsyncd.server.rowstore import RowStore

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
        """Wait for background work at shutdown, so nothing is cut mid-write."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


STATE: web.AppKey[ServerState] = web.AppKey("dsmsyncd_state", ServerState)
