"""Serving a test proxy's connection handler on a free loopback port, relaying, and a
delayed link.

The one rule every such proxy needs at teardown: the listener closes, and each
connection it is still handling is cancelled and awaited, so no task outlives the
test (pytest turns a task destroyed while pending into an error). ``relay`` is the
other thing every proxy does: connect a client to the server and pump bytes both
ways (each proxy's pumps decide what to count, hold or cut), closing both sides.

``DelayedReader`` makes a loopback link look like a wide-area one (issue 9): what is
read from a socket comes out ``delay_s`` later, in order, with no limit on bandwidth.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# The pumps of one relayed connection, given the server side's reader and writer.
Pumps = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Iterable[Coroutine[Any, Any, None]]]


async def relay(writer: asyncio.StreamWriter, upstream: tuple[str, int], pumps: Pumps) -> None:
    """Connect to ``upstream`` and run ``pumps`` until they end; a reset on either side
    ends them; both sides are closed after."""
    up_reader, up_writer = await asyncio.open_connection(*upstream)
    try:
        async with asyncio.TaskGroup() as group:
            for pump in pumps(up_reader, up_writer):
                group.create_task(pump)
    except* (ConnectionError, OSError):
        pass
    finally:
        for w in (writer, up_writer):
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()


class DelayedReader:
    """A stream reader whose every read returns ``delay_s`` after the bytes arrived.

    ``pump`` (a task the proxy runs for the connection's life) reads as fast as the
    socket delivers and stamps each read with its arrival; ``read`` hands the reads
    out in order, each once its time has come. So one way of a link takes ``delay_s``
    whatever the traffic, as on a long cable: a round trip through a proxy that delays
    both ways by ``d`` costs ``2 d``, and bytes in flight are never throttled.
    ``not_before`` (loop time): no read comes out earlier. The client's side of a new
    connection gets ``3 d`` from the accept: the TCP handshake's round trip, which the
    proxy's local accept does not pay, before the client's first bytes arrive ``d``
    after it.
    """

    def __init__(
        self, reader: asyncio.StreamReader, delay_s: float, size: int, not_before: float = 0.0
    ) -> None:
        self._reader = reader
        self._delay_s = delay_s
        self._size = size
        self._not_before = not_before
        self._reads: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        data = b"-"
        while data:
            data = await self._reader.read(self._size)
            due = max(loop.time() + self._delay_s, self._not_before)
            self._reads.put_nowait((due, data))

    async def read(self, _size: int = -1) -> bytes:
        due, data = await self._reads.get()
        wait = due - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        return data


@contextlib.asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[str]:
    """``handler`` served on 127.0.0.1; yields its ``http://`` URL."""
    tasks: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except asyncio.CancelledError:
            pass  # closed by the teardown below: nothing is waiting for this task
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
