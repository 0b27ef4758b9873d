"""What every request handler and background job of the local server shares.

Built once at startup (``main.py``) and held by the app under :data:`STATE`: the two
stores, the upload shape the server asks for, and the work running in the background,
filed under what it works on (``state.parses.running(source_id)``), so that cleanup and
shutdown can wait for exactly the work that touches what they remove.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from aiohttp import web

from dsmsyncd.server.catalog.metastore import MetaStore
from dsmsyncd.server.storage.chunk_gate import ChunkGates
from dsmsyncd.server.storage.rowstore import RowStore

logger = logging.getLogger("dsmsyncd.server.state")

# The upload shape the server asks clients for (digest §3d): maxima, not requirements.
PREFERRED_CHUNK_SIZE = 4 * 1024 * 1024
PREFERRED_UPLOAD_PARALLELISM = 4
# The largest chunk taken (16 preferred chunks): a chunk is one request, and a client
# that ignores the preference should learn so, not stream a whole file into one chunk.
MAX_CHUNK_BYTES = 64 * 1024 * 1024
# ``url`` sources (``jobs/fetch_url.py``): the largest file and the longest fetch.
DEFAULT_URL_FETCH_MAX_BYTES = 1024 * 1024 * 1024
DEFAULT_URL_FETCH_TIMEOUT = 600.0
# How long a discarded revision's files are kept so that it can be restored (7 days).
DEFAULT_KEEP_DISCARDED_SECONDS = 7 * 24 * 3600.0

# A commit or an apply answers its work done if it ends within this (``jobs/short_wait``).
DEFAULT_ANSWER_WAIT_S = 0.2

K = TypeVar("K", bound=Hashable)


class KeyedTasks(Generic[K]):
    """Background tasks of one kind, each filed under the key of what it works on."""

    def __init__(self, state: ServerState, kind: str) -> None:
        self._state = state
        self._kind = kind
        self._tasks: dict[K, set[asyncio.Task[Any]]] = {}

    def start(
        self, key: K, coro: Coroutine[Any, Any, Any], *, label: object = None
    ) -> asyncio.Task[Any]:
        """Spawn ``coro`` under ``key``; ``label`` (default: the key) names it in logs."""
        name = f"{self._kind}-{key if label is None else label}"
        task = self._state.spawn(coro, name=name)
        self._tasks.setdefault(key, set()).add(task)
        task.add_done_callback(lambda done: self._forget(key, done))
        return task

    def _forget(self, key: K, task: asyncio.Task[Any]) -> None:
        tasks = self._tasks.get(key)
        if tasks is not None:
            tasks.discard(task)
            if not tasks:
                del self._tasks[key]

    def running(self, key: K) -> list[asyncio.Task[Any]]:
        """The tasks under ``key`` that have not ended yet."""
        return [t for t in self._tasks.get(key, ()) if not t.done()]

    async def wait(self, key: K) -> None:
        """Until no task runs under ``key``, including tasks started while waiting.

        Only waits: the tasks record their own outcome, and a crash is logged by
        :meth:`ServerState.spawn`.
        """
        while tasks := self.running(key):
            await asyncio.wait(tasks)


class KeyedLocks(Generic[K]):
    """One ``asyncio.Lock`` per key, made when first asked for."""

    def __init__(self) -> None:
        self._locks: dict[K, asyncio.Lock] = {}

    def lock(self, key: K) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def forget(self, key: K) -> None:
        self._locks.pop(key, None)


@dataclass
class ServerState:
    """The stores, the upload shape, and the background work of one running server."""

    data_dir: Path
    meta: MetaStore
    rows: RowStore
    preferred_chunk_size: int = PREFERRED_CHUNK_SIZE
    preferred_upload_parallelism: int = PREFERRED_UPLOAD_PARALLELISM
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    # None: no limit. Checked while bytes stream in, so a too-large upload never lands.
    max_upload_bytes: int | None = None
    url_fetch_max_bytes: int = DEFAULT_URL_FETCH_MAX_BYTES
    # Seconds for the whole fetch of a ``url`` source (connect, headers and body).
    url_fetch_timeout: float = DEFAULT_URL_FETCH_TIMEOUT
    # 0: a discarded revision's files go at once and it cannot be restored.
    keep_discarded_seconds: float = DEFAULT_KEEP_DISCARDED_SECONDS
    # How long a commit or an apply waits for its work before answering (0: at once, as
    # the hosted service does; ``jobs/short_wait.py``).
    answer_wait_s: float = DEFAULT_ANSWER_WAIT_S
    # Fetching or parsing a source (key: source id): it writes its bytes and ``in_{id}``.
    parses: KeyedTasks[int] = field(init=False)
    # Computing an output schema's rows (key: output schema id): ``out_{id}``.
    materializations: KeyedTasks[int] = field(init=False)
    # Apply jobs (key: dataset fourfour): they write the dataset's table.
    applies: KeyedTasks[str] = field(init=False)
    # One apply at a time per dataset (key: fourfour); a second one waits.
    apply_locks: KeyedLocks[str] = field(default_factory=KeyedLocks, init=False)
    # One commit, whole-body upload, cancel or removal of a source's bytes at a time
    # (key: source id).
    upload_locks: KeyedLocks[int] = field(default_factory=KeyedLocks, init=False)
    # Chunk writes side by side, a commit alone (``storage/chunk_gate.py``).
    chunk_gates: ChunkGates = field(default_factory=ChunkGates, init=False)
    # Wake-ups of apply jobs waiting for an output schema to finish (``jobs/signals``).
    output_schema_events: dict[int, asyncio.Event] = field(default_factory=dict, init=False)
    _background: set[asyncio.Task[Any]] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.parses = KeyedTasks(self, "parse-source")
        self.materializations = KeyedTasks(self, "materialize")
        self.applies = KeyedTasks(self, "apply")

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

        Parsing and transforms pick up again at the next start (``jobs/resume_parse``),
        and so does an apply cut short (``jobs/resume_apply``), so cancelling loses no
        data; a row-store statement already running in a worker thread still runs to
        its end.
        """
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


STATE: web.AppKey[ServerState] = web.AppKey("dsmsyncd_state", ServerState)
