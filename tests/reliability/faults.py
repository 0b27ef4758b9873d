"""A loopback proxy in front of the target that misbehaves on cue, as real targets do.

It relays bytes both ways between the daemon and the real server, reads each request's
head (request line and headers) and, where a scripted ``Fault`` matches the request
line, does what the fault says instead of relaying it:

* ``answer``: reads the request's body, answers it itself (a 503, a 429 with
  ``Retry-After``) and closes the connection; the server never sees the request;
* ``hang``: reads the request and never answers (the daemon's request timeout ends it);
* ``hold``: ``before`` holds the request unsent, ``after`` relays it and holds the
  server's answer; either way ``held`` is set, so a test kills the daemon (or the
  server) at exactly that step, without any timing;
* ``down()`` / ``up()``: the proxy stops listening (connections are refused, as by a
  target that is down) and listens again on the same port.

``random_resets(rng, ...)`` cuts connections at random byte offsets of what the daemon
sends, seeded by the test, bounded in number. No step of the proxy waits on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEAD_END = b"\r\n\r\n"
LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


@dataclass
class Fault:
    """What to do, ``times`` times, with a request whose request line matches ``pattern``."""

    pattern: str
    kind: str  # "answer" | "hang" | "hold"
    times: int = 1
    status: int = 503
    headers: tuple[tuple[str, str], ...] = ()
    when: str = "before"  # for "hold": hold the request ("before") or its answer ("after")
    held: asyncio.Event = field(default_factory=asyncio.Event)
    hits: int = 0

    def matches(self, request_line: str) -> bool:
        return self.hits < self.times and re.search(self.pattern, request_line) is not None


@dataclass
class Resets:
    """Cut a connection after a random number of bytes, ``left`` more times."""

    rng: random.Random
    left: int
    probability: float
    max_offset: int
    done: int = 0


@dataclass
class FaultProxy:
    upstream_host: str
    upstream_port: int
    port: int = 0
    faults: list[Fault] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    resets: Resets | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def random_resets(self, rng: random.Random, count: int, probability: float, span: int) -> None:
        """Cut up to ``count`` connections, each with ``probability``, within ``span`` bytes."""
        self.resets = Resets(rng, count, probability, span)

    def release(self) -> None:
        """Let every held or hung request go on (a hung one is then cut)."""
        self._release.set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        """Stop listening and cut every open connection: the target is gone."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self._cancel_links()

    async def _cancel_links(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._link(reader, writer)
        except (asyncio.CancelledError, ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        resets = self.resets  # this link's draw, whatever the test sets meanwhile
        cut_after = self._cut_offset(resets)
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                self.requests[line] += 1
                fault = next((f for f in self.faults if f.matches(line)), None)
                if fault is not None:
                    fault.hits += 1
                body = await _read_body(reader, head)
                request = head + body
                if cut_after is not None and cut_after < len(request):
                    up_writer.write(request[:cut_after])
                    await up_writer.drain()
                    assert resets is not None
                    resets.left -= 1
                    resets.done += 1
                    return
                if cut_after is not None:
                    cut_after -= len(request)
                if fault is not None and fault.kind != "hold":
                    await self._misbehave(fault, writer)
                    return
                if fault is not None and fault.when == "before":
                    fault.held.set()
                    await self._release.wait()
                up_writer.write(request)
                await up_writer.drain()
                if not await self._relay_answer(up_reader, writer, fault):
                    return
        finally:
            up_writer.transport.abort()

    @staticmethod
    def _cut_offset(resets: Resets | None) -> int | None:
        if resets is None or resets.left <= 0 or resets.rng.random() >= resets.probability:
            return None
        return resets.rng.randrange(resets.max_offset)

    async def _misbehave(self, fault: Fault, writer: asyncio.StreamWriter) -> None:
        if fault.kind == "hang":
            fault.held.set()
            await self._release.wait()
            return
        body = b'{"message": "injected by the test proxy"}'
        extra = "".join(f"{name}: {value}\r\n" for name, value in fault.headers)
        writer.write(
            f"HTTP/1.1 {fault.status} Injected\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n".encode()
            + body
        )
        await writer.drain()

    async def _relay_answer(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault | None
    ) -> bool:
        """Relay one answer; False if the link is done (closed, or the answer was held)."""
        head = await _read_head(up_reader)
        if head is None:
            return False
        if fault is not None and fault.when == "after":
            fault.held.set()  # the server took the request; the daemon never hears
            await self._release.wait()
            return False
        body = await _read_body(up_reader, head)
        writer.write(head + body)
        await writer.drain()
        return b"\r\nconnection: close" not in head.lower()


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(HEAD_END)
    except asyncio.IncompleteReadError:
        return None


async def _read_body(reader: asyncio.StreamReader, head: bytes) -> bytes:
    """The message body after ``head``: by Content-Length, or chunk by chunk."""
    if b"\r\ntransfer-encoding: chunked" not in head.lower():
        found = LENGTH.search(head)
        return await reader.readexactly(int(found.group(1)) if found else 0)
    body = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        body += size_line + await reader.readexactly(size + 2)
        if size == 0:
            return body


@contextlib.asynccontextmanager
async def fault_proxy(upstream_url: str) -> AsyncIterator[FaultProxy]:
    parts = urlsplit(upstream_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = FaultProxy(parts.hostname, parts.port)
    await proxy.up()
    try:
        yield proxy
    finally:
        proxy.release()
        await proxy.down()
