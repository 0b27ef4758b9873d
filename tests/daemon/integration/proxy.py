"""A loopback TCP proxy that drops the connection of an apply request, for real.

It relays bytes between the client and the real server and watches the client's
side for ``PUT …/apply`` request lines. Armed with ``drop_after_server``, it relays
the apply, waits until the server's answer starts to come back (so the server has
taken the request and started the apply job), then closes the client's connection
without relaying a byte of it. Armed with ``drop_before_server``, it closes the
client's connection instead of relaying the apply at all. Either way only the next
apply is dropped; later ones pass through. No timing is involved: every step waits
on bytes actually read from a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.daemon.support.loopback_proxy import relay, serving

APPLY = re.compile(rb"PUT /api/publishing/v1/revision/[^ /]+/\d+/apply HTTP/1\.1\r\n")


@dataclass
class ApplyDropper:
    upstream_host: str
    upstream_port: int
    url: str = ""
    # Apply request lines the client sent, and how many of them reached the server.
    applies_seen: int = 0
    applies_forwarded: int = 0
    dropped: int = 0
    _mode: str | None = None

    def drop_after_server(self) -> None:
        self._mode = "after"

    def drop_before_server(self) -> None:
        self._mode = "before"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        taken = asyncio.Event()  # set once an apply to be dropped went to the server
        await relay(
            writer,
            (self.upstream_host, self.upstream_port),
            lambda up_reader, up_writer: (
                self._upstream(reader, up_writer, writer, taken),
                self._downstream(up_reader, writer, taken),
            ),
        )

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        writer: asyncio.StreamWriter,
        taken: asyncio.Event,
    ) -> None:
        seen = b""
        while data := await reader.read(65536):
            seen = (seen + data)[-4096:]
            found = len(APPLY.findall(seen))
            if found:
                seen = b""
                self.applies_seen += found
                if self._mode == "before":
                    self._mode = None
                    self.dropped += 1
                    writer.transport.abort()
                    up_writer.close()
                    return
                self.applies_forwarded += found
                if self._mode == "after":
                    self._mode = None
                    taken.set()
            up_writer.write(data)
            await up_writer.drain()
        up_writer.close()

    async def _downstream(
        self, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter, taken: asyncio.Event
    ) -> None:
        while data := await up_reader.read(65536):
            if taken.is_set():
                # The server answered the apply: it has taken it. The client never hears.
                self.dropped += 1
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def apply_dropper(upstream_url: str) -> AsyncIterator[ApplyDropper]:
    parts = urlsplit(upstream_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = ApplyDropper(parts.hostname, parts.port)
    async with serving(proxy._handle) as proxy.url:
        yield proxy
