"""A loopback TCP proxy in front of the server that counts, holds and cuts the upload link.

It relays bytes both ways between a client and the real server, and on the client's
side (what the server receives):

* counts every byte it forwards (``sent``), every upload chunk request by its
  ``seq_num`` (``chunk_requests``), every request line in the order sent (``requests``,
  ``"METHOD /path"``) and every connection the client opened (``connections``): what
  one job costs in round trips and handshakes;
* with a budget (``hold_after``), forwards exactly that many bytes more and then holds
  the link: nothing more reaches the server until ``lift()``. ``held`` is set when the
  budget is used up, so a test waits on an event instead of on time: "halfway" is
  exact. ``cut_held()`` drops the held connections (their client was killed), so
  their buffered bytes never reach the server after the lift;
* with ``reset_chunk(seq, times)``, cuts the connection of the next ``times`` requests
  for that chunk before a byte of them is forwarded, as a lost connection would.

With ``delay_s`` each way of the link is that much longer (``DelayedReader``): what
a wide-area link costs a client, measured by ``bench/upload_rtt.py`` over TLS, which
passes through untouched. A new connection's first bytes reach the server a round
trip later still, as after a real TCP handshake. Not modelled: TCP's congestion
window (slow start on a new or idle connection) and any bandwidth limit. Tests use
no delay: no timing is involved, every step waits on bytes actually read from a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tests.daemon.support.loopback_proxy import DelayedReader, relay, serving

Reader = asyncio.StreamReader | DelayedReader

CHUNK = re.compile(rb"POST /api/publishing/v1/source/\d+/chunk/(\d+)/\d+ HTTP/1\.1\r\n")
REQUEST_LINE = re.compile(rb"([A-Z]+) (/[^ ?]*)(?:\?[^ ]*)? HTTP/1\.1\r\n")


@dataclass
class LinkProxy:
    upstream_host: str
    upstream_port: int
    url: str = ""
    sent: int = 0
    budget: int | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    chunk_requests: Counter[int] = field(default_factory=Counter)
    resets: int = 0
    requests: list[str] = field(default_factory=list)
    connections: int = 0
    # ``connections`` as each of ``requests`` was seen: which were open before it.
    connections_at: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    read_size: int = 65536
    _resets_left: dict[int, int] = field(default_factory=dict)
    _lifted: asyncio.Event = field(default_factory=asyncio.Event)
    _held_links: set[asyncio.StreamWriter] = field(default_factory=set)

    def hold_after(self, count: int) -> None:
        """Forward ``count`` more bytes to the server, then hold the link (``held``)."""
        self.budget = self.sent + count
        self.held.clear()
        self._lifted.clear()

    def lift(self) -> None:
        """Let bytes through again, without limit."""
        self.budget = None
        self._lifted.set()

    def cut_held(self) -> None:
        """Abort every connection waiting at the budget, both ways."""
        for up_writer in self._held_links:
            up_writer.transport.abort()

    def reset_chunk(self, seq: int, times: int) -> None:
        self._resets_left[seq] = times

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1

        def pumps(
            up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter
        ) -> list[Coroutine[Any, Any, None]]:
            client_side: Reader = reader
            server_side: Reader = up_reader
            delayed: list[Coroutine[Any, Any, None]] = []
            if self.delay_s:
                # The client's connect() returned at once (the accept is local); on the
                # link its SYN and SYN-ACK take a round trip before a byte can follow.
                handshake = asyncio.get_running_loop().time() + 3 * self.delay_s
                client_side = DelayedReader(reader, self.delay_s, self.read_size, handshake)
                server_side = DelayedReader(up_reader, self.delay_s, self.read_size)
                delayed = [client_side.pump(), server_side.pump()]
            return [
                *delayed,
                self._upstream(client_side, writer, up_writer),
                self._relay(server_side, writer),
            ]

        await relay(writer, (self.upstream_host, self.upstream_port), pumps)

    async def _upstream(
        self,
        reader: Reader,
        writer: asyncio.StreamWriter,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        # aiohttp sends a request only once the previous answer is in (no pipelining),
        # so a read holding a request line holds nothing of the request before it.
        while data := await reader.read(self.read_size):
            seqs = [int(m.group(1)) for m in CHUNK.finditer(data)]
            if line := REQUEST_LINE.match(data):  # a request starts a read (see above)
                self.requests.append(f"{line[1].decode()} {line[2].decode()}")
                self.connections_at.append(self.connections)
            self.chunk_requests.update(seqs)
            if any(self._resets_left.get(seq, 0) > 0 for seq in seqs):
                for seq in seqs:
                    self._resets_left[seq] = self._resets_left.get(seq, 0) - 1
                self.resets += 1
                writer.transport.abort()
                up_writer.transport.abort()
                return
            await self._forward(data, up_writer)
        up_writer.close()

    async def _forward(self, data: bytes, up_writer: asyncio.StreamWriter) -> None:
        while data:
            if self.budget is not None and self.sent >= self.budget:
                self.held.set()
                self._held_links.add(up_writer)
                try:
                    await self._lifted.wait()
                finally:
                    self._held_links.discard(up_writer)
                if up_writer.transport.is_closing():
                    raise ConnectionResetError("cut while held")
                continue
            room = len(data) if self.budget is None else self.budget - self.sent
            piece, data = data[:room], data[room:]
            self.sent += len(piece)
            up_writer.write(piece)
            await up_writer.drain()

    async def _relay(self, up_reader: Reader, writer: asyncio.StreamWriter) -> None:
        while data := await up_reader.read(self.read_size):
            writer.write(data)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def link_proxy(
    upstream_url: str, *, delay_s: float = 0.0, read_size: int = 65536
) -> AsyncIterator[LinkProxy]:
    """The proxy in front of ``upstream_url``; ``delay_s`` one way, each way."""
    parts = urlsplit(upstream_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = LinkProxy(parts.hostname, parts.port, delay_s=delay_s, read_size=read_size)
    async with serving(proxy._handle) as proxy.url:
        try:
            yield proxy
        finally:
            proxy.lift()
