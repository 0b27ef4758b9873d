"""A loopback proxy that freezes one daemon at a step, so that it can be killed there.

A replica reaches the server through its own proxy. Armed with a step, the proxy
relays everything until the first request of that step, then freezes that one
connection (every other request keeps flowing, so the replica's other lanes and its
lease renewals go on):

* ``UPLOAD``: the first chunk request; half of the bytes read with its request line
  reach the server, the rest never does (the server holds a chunk cut mid-body, as
  with the server's ``upload-mid-chunk`` pause point);
* ``APPLY``: the first apply request reaches the server, which takes it and starts
  the apply; its answer is held, so the replica never learns the apply was taken.

``held`` is set once the step is frozen, and ``step`` is the matched request line's
groups (the source id of a chunk, the fourfour and revision of an apply), so a test
finds the job in the state store. ``cut_held`` aborts the frozen connection once its
client was killed (a chunk cut mid-body). No timing: every step waits on bytes read.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.daemon.support.loopback_proxy import relay, serving

UPLOAD = re.compile(rb"POST /api/publishing/v1/source/(\d+)/chunk/\d+/\d+ HTTP/1\.1\r\n")
APPLY = re.compile(rb"PUT /api/publishing/v1/revision/([^ /]+)/(\d+)/apply HTTP/1\.1\r\n")


@dataclass
class StepProxy:
    upstream_host: str
    upstream_port: int
    freeze_at: re.Pattern[bytes] | None = None
    url: str = ""
    held: asyncio.Event = field(default_factory=asyncio.Event)
    step: tuple[str, ...] = ()
    _frozen: list[asyncio.StreamWriter] = field(default_factory=list)

    def cut_held(self) -> None:
        """Abort the frozen connection: what it held never arrives."""
        for frozen in self._frozen:
            frozen.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer_held = asyncio.Event()
        await relay(
            writer,
            (self.upstream_host, self.upstream_port),
            lambda up_reader, up_writer: (
                self._upstream(reader, up_writer, answer_held),
                self._downstream(up_reader, writer, answer_held),
            ),
        )

    async def _upstream(
        self,
        reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        answer_held: asyncio.Event,
    ) -> None:
        while data := await reader.read(65536):
            found = self.freeze_at.search(data) if self.freeze_at is not None else None
            if found is not None:
                self.freeze_at, self.step = None, tuple(g.decode() for g in found.groups())
                if found.re is APPLY:
                    answer_held.set()
                else:
                    up_writer.write(data[: len(data) // 2])
                    await up_writer.drain()
                    await self._freeze(up_writer)
            up_writer.write(data)
            await up_writer.drain()
        up_writer.close()

    async def _downstream(
        self,
        up_reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answer_held: asyncio.Event,
    ) -> None:
        while data := await up_reader.read(65536):
            if answer_held.is_set():
                await self._freeze(writer)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _freeze(self, frozen: asyncio.StreamWriter) -> None:
        """Hold this connection for good (until cut, or the proxy's teardown)."""
        self._frozen.append(frozen)
        self.held.set()
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def step_proxy(
    upstream_url: str, freeze_at: re.Pattern[bytes] | None
) -> AsyncIterator[StepProxy]:
    parts = urlsplit(upstream_url)
    assert parts.hostname is not None
    assert parts.port is not None
    proxy = StepProxy(parts.hostname, parts.port, freeze_at)
    async with serving(proxy._handle) as proxy.url:
        yield proxy
