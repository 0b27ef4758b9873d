"""DuckDB work in worker threads that the event loop can stop: time budgets and shutdown.

Every row-store call runs on a cursor of its own in a worker thread. This module keeps
the running ones, so that:

* a read (a SODA query, a page of rows or errors, an export) gets a time budget; when it
  passes, the cursor is interrupted (DuckDB's ``interrupt``), the caller gets
  :class:`QueryTimeout` and the thread is free again within milliseconds;
* a read that needs more memory than DuckDB's ``memory_limit`` (one limit for the whole
  database) fails with :class:`QueryOutOfMemory` instead of growing;
* a caller that is cancelled (shutdown, a cancelled background task) interrupts its
  statement instead of leaving it running in its thread for nobody;
* shutdown interrupts everything still running, so the process ends in bounded time.

DuckDB forgets an interrupt that arrives before a statement starts, and one call may run
several statements, so a stopped cursor is interrupted again every ``REINTERRUPT_S``
until its thread returns, and a call that is stopped before its thread starts never
starts. Reads run in a pool of their own (``READ_WORKERS`` threads), so slow reads
cannot hold every thread that parses, transforms and applies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

import duckdb

T = TypeVar("T")

REINTERRUPT_S = 0.02
READ_WORKERS = 4


class QueryTimeout(Exception):
    """A read ran past its time budget and was interrupted."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"the query ran longer than its budget of {budget:g}s")
        self.budget = budget


class QueryOutOfMemory(Exception):
    """A read needed more memory than DuckDB's memory limit."""

    def __init__(self, memory_limit: str) -> None:
        super().__init__(f"the query needs more memory than the limit of {memory_limit}")
        self.memory_limit = memory_limit


class QueryOutOfRange(Exception):
    """A read computed a number beyond the stored number range (e.g. a ``sum``).

    Aggregates cannot be wrapped in DuckDB's ``try()``, so the overflow surfaces here,
    once per read, rather than as a cell error.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _Running:
    """One call's cursor: whether it was told to stop, and its step in a worker thread."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, owner: Statements) -> None:
        self.cursor = cursor
        self.stopped = False
        self.step: concurrent.futures.Future[Any] | None = None
        self.done = threading.Event()
        self._owner = owner
        self._closing = threading.Lock()  # no interrupt on a cursor being closed

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Interrupt now, and again until the worker thread has returned."""
        self.stopped = True
        with self._closing:
            if self.done.is_set():
                return
            self.cursor.interrupt()
        loop.call_later(REINTERRUPT_S, self.stop, loop)

    def run_step(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """In the worker thread: one step on the cursor, unless stopped already."""
        if self.stopped:
            raise duckdb.InterruptException("stopped before it started")
        return fn(self.cursor)

    def finish(self) -> None:
        """Close the cursor once no step runs on it (now, or when the step returns)."""
        step = self.step
        if step is not None and not step.done():
            step.add_done_callback(lambda _: self.finish())
            return
        with self._closing:
            if self.done.is_set():
                return
            self.cursor.close()
            self.done.set()
        self._owner.forget(self)


class Statements:
    """The running row-store calls, and the budgets reads get."""

    def __init__(self, *, query_timeout: float | None, memory_limit: str) -> None:
        self.query_timeout = query_timeout
        self.memory_limit = memory_limit
        self._running: set[_Running] = set()
        # Steps finish in worker threads; waiters (shutdown) wake on every change.
        self._changed = threading.Condition()
        self._reads = concurrent.futures.ThreadPoolExecutor(
            READ_WORKERS, thread_name_prefix="dsmsyncd-read"
        )
        self._work = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="dsmsyncd-work")

    async def run(
        self,
        cursor: duckdb.DuckDBPyConnection,
        fn: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        read: bool,
    ) -> T:
        """``fn(cursor)`` in a worker thread; the cursor is closed once it has returned.

        ``read`` gives the call the read budget and the reads' thread pool.
        """
        running = self._register(cursor)
        try:
            return await self._step(running, fn, read=read, spent=[0.0])
        finally:
            running.finish()

    async def stream(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, params: list[Any], batch: int
    ) -> AsyncGenerator[list[tuple[Any, ...]], None]:
        """A read's rows in batches; its budget counts DuckDB's time, not the client's."""
        running = self._register(cursor)
        spent = [0.0]
        try:
            await self._step(running, lambda cur: cur.execute(sql, params), read=True, spent=spent)
            while rows := await self._step(
                running, lambda cur: cur.fetchmany(batch), read=True, spent=spent
            ):
                yield rows
        finally:
            running.finish()

    async def _step(
        self,
        running: _Running,
        fn: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        read: bool,
        spent: list[float],
    ) -> T:
        """One step in a worker thread, stopped when the budget passes or we are cancelled.

        ``spent`` accumulates the DuckDB time of a read's steps against its one budget.
        """
        loop = asyncio.get_running_loop()
        budget = self.query_timeout if read else None
        left = None if budget is None else max(budget - spent[0], 0.0)
        started = time.monotonic()
        running.step = (self._reads if read else self._work).submit(running.run_step, fn)
        result = asyncio.wrap_future(running.step)
        result.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout(left):
                return await asyncio.shield(result)
        except TimeoutError:
            # Answer now: the interrupted statement frees its thread on its own.
            running.stop(loop)
            assert budget is not None
            raise QueryTimeout(budget) from None
        except asyncio.CancelledError:
            running.stop(loop)
            raise
        except duckdb.OutOfMemoryException as exc:
            if read:
                raise QueryOutOfMemory(self.memory_limit) from exc
            raise
        except duckdb.OutOfRangeException as exc:
            if read:
                raise QueryOutOfRange(str(exc)) from exc
            raise
        finally:
            spent[0] += time.monotonic() - started

    def _register(self, cursor: duckdb.DuckDBPyConnection) -> _Running:
        running = _Running(cursor, self)
        with self._changed:
            self._running.add(running)
            self._changed.notify_all()
        return running

    def forget(self, running: _Running) -> None:
        with self._changed:
            self._running.discard(running)
            self._changed.notify_all()

    def active(self) -> list[_Running]:
        with self._changed:
            return list(self._running)

    def interrupt_all(self) -> int:
        """Interrupt every running call (shutdown); how many there were."""
        loop = asyncio.get_running_loop()
        running = self.active()
        for item in running:
            item.stop(loop)
        return len(running)

    async def wait_idle(self, grace: float) -> bool:
        """Whether every call has returned within ``grace`` seconds."""
        return await self.wait_running(0, grace)

    async def wait_running(self, count: int, grace: float) -> bool:
        """Whether exactly ``count`` calls are running within ``grace`` seconds."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self._running) == count, grace)

        return await asyncio.to_thread(wait)

    def close(self) -> None:
        """Let the worker threads go; call once nothing runs any more."""
        self._reads.shutdown(wait=False, cancel_futures=True)
        self._work.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a stopped step's outcome as seen (an interrupt is expected, not news)."""
    if not future.cancelled():
        future.exception()
