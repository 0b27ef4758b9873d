"""A loopback TCP proxy in front of the server that counts, holds and cuts the upload link.

It relays bytes both ways between a client and the real server, and on the client's
side (what the server receives):

* counts every byte it forwards (``sent``), and every upload chunk request by its
  ``seq_num`` (``chunk_requests``);
* with a budget (``hold_after``), forwards exactly that many bytes more and then holds
  the link: nothing more reaches the server until ``lift()``. ``held`` is set when the
  budget is used up, so a test waits on an event instead of on time: "halfway" is
  exact. ``cut_held()`` drops the held connections (their client was killed), so
  their buffered bytes never reach the server after the lift;
* with ``reset_chunk(seq, times)``, cuts the connection of the next ``times`` requests
  for that chunk before a byte of them is forwarded, as a lost connection would.

No timing is involved: every step waits on bytes actually read from a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.daemon.support.loopback_proxy import relay, serving

CHUNK = re.compile(rb"POST /api/publishing/v1/source/\d+/chunk/(\d+)/\d+ HTTP/1\.1\r\n")


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
        await relay(
            writer,
            (self.upstream_host, self.upstream_port),
            lambda up_reader, up_writer: (
                self._upstream(reader, writer, up_writer),
                self._relay(up_reader, writer),
            ),
        )

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        # aiohttp sends a request only once the previous answer is in (no pipelining),
        # so a read holding a request line holds nothing of the request before it.
        while data := await reader.read(65536):
            seqs = [int(m.group(1)) for m in CHUNK.finditer(data)]
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

    async def _relay(self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await up_reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def link_proxy(upstream_url: str) -> AsyncIterator[LinkProxy]:
    parts = urlsplit(upstream_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = LinkProxy(parts.hostname, parts.port)
    async with serving(proxy._handle) as proxy.url:
        try:
            yield proxy
        finally:
            proxy.lift()
