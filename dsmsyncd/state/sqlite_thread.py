"""One SQLite connection on a thread of its own, a whole transaction per trip to it.

``sqlite3`` blocks, so the connection lives on one worker thread and the event loop
hands it work. A trip costs the loop a hand-off and a wake-up (~0.1 ms of CPU, more
when the cores are busy); sending each statement of a transaction on its own trip, as
aiosqlite does, made a state transition (BEGIN, two reads, an update, an insert, a read,
COMMIT) seven trips and ~1.2 ms of CPU, most of the daemon's CPU per small file
(issue 9, bench/RESULTS.md). Here a transaction's work runs on the thread in one trip.

The work is written as coroutines over ``InThread`` (``await conn.execute(...)``), the
same shape as the PostgreSQL store's, so the lane and upload SQL keep one interface
(``lane_methods.LaneSql``). ``InThread``'s methods run their statement at once and
never suspend, so such a coroutine runs to its end in one ``send``: ``run_to_end``
does that on the thread, and refuses a coroutine that waits on anything else.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class InThread:
    """The connection as a transaction's work sees it, on the connection's thread.

    Coroutine methods only for the shape shared with the PostgreSQL store: each runs
    its statement when called and returns without suspending.
    """

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    async def execute(self, sql: str, params: Iterable[object] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, tuple(params))

    async def execute_fetchall(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        return self.raw.execute(sql, tuple(params)).fetchall()


def run_to_end(work: Awaitable[T]) -> T:
    """Run a coroutine that never suspends (its awaits are ``InThread`` calls); its result."""
    if not isinstance(work, Coroutine):
        raise TypeError(f"a state transaction's work must be a coroutine, not {work!r}")
    try:
        work.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("a state transaction's work waited on something other than its connection")


class ThreadConnection:
    """The connection and its thread; every method is one trip to the thread."""

    def __init__(self, raw: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self._raw = raw
        self._thread = thread

    @classmethod
    async def connect(cls, path: str) -> ThreadConnection:
        """Open ``path`` on a new thread (autocommit: transactions are explicit)."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dsmsyncd-sqlite")

        def connect() -> sqlite3.Connection:
            raw = sqlite3.connect(path, isolation_level=None)
            raw.row_factory = sqlite3.Row
            return raw

        try:
            raw = await asyncio.get_running_loop().run_in_executor(thread, connect)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(raw, thread)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the connection's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, self._raw)

    async def run(self, work: Callable[[InThread], Awaitable[T]]) -> T:
        """``work`` (a coroutine over ``InThread``) run to its end on the thread."""
        return await self.call(lambda raw: run_to_end(work(InThread(raw))))

    async def execute_fetchall(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        values = tuple(params)
        return await self.call(lambda raw: raw.execute(sql, values).fetchall())

    async def execute(self, sql: str, params: Iterable[object] = ()) -> None:
        values = tuple(params)
        await self.call(lambda raw: raw.execute(sql, values))

    async def set_trace_callback(self, trace: Callable[[str], object] | None) -> None:
        await self.call(lambda raw: raw.set_trace_callback(trace))

    async def close(self) -> None:
        try:
            await self.call(lambda raw: raw.close())
        finally:
            self._thread.shutdown(wait=False)
