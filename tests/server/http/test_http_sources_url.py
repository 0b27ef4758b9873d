"""``url`` sources are fetched and parsed like an upload; ``connection_agent`` ones fail at once.

The file is served by a real aiohttp server written here, on loopback, in the test's
loop. The slow URL never answers: its handler waits on an event the test sets only
when it is done, and the server under test runs with a small fetch time limit, so the
timeout is the server's own, not a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    BAD_FIELD,
    latest_output_schema,
    new_dataset,
    refused,
    settled,
)
from tests.support.local_server import ALICE, basic_auth, local_server

CSV = b"id,city\n1,Oslo\n2,Lima\n3,Pune\n"
SIZE_LIMIT = 1000
TIME_LIMIT = 0.5


@dataclass
class FileServer:
    """Loopback HTTP serving ``/data.csv``, ``/big.csv``, ``/missing.csv`` and ``/slow.csv``."""

    url: str
    never: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    never = asyncio.Event()

    async def data(_request: web.Request) -> web.Response:
        return web.Response(body=CSV, content_type="text/csv")

    async def big(_request: web.Request) -> web.StreamResponse:
        reply = web.StreamResponse(headers={"Content-Type": "text/csv"})  # no Content-Length
        await reply.prepare(_request)
        for _ in range(SIZE_LIMIT // 100 + 2):
            await reply.write(b"x" * 99 + b"\n")
        await reply.write_eof()
        return reply

    async def slow(_request: web.Request) -> web.Response:
        await never.wait()  # set only at teardown: the fetch must give up on its own
        return web.Response(body=CSV)

    app = web.Application()
    app.router.add_get("/data.csv", data)
    app.router.add_get("/big.csv", big)
    app.router.add_get("/slow.csv", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield FileServer(url=f"http://127.0.0.1:{port}", never=never)
    finally:
        never.set()
        await runner.cleanup()


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, aiohttp.ClientSession]]:
    """The server with small url fetch limits, and alice's session on it."""
    async with (
        local_server(
            tmp_path / "srv", url_fetch_max_bytes=SIZE_LIMIT, url_fetch_timeout=TIME_LIMIT
        ) as server,
        aiohttp.ClientSession(
            base_url=server.url, headers={"Authorization": basic_auth(*ALICE)}
        ) as api,
    ):
        yield server, api


async def _url_source(
    server: RunningServer, api: aiohttp.ClientSession, url: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A url source for ``url`` on a new dataset, once its fetch and parse ended."""
    rev = await new_dataset(api)
    body = {"source_type": {"type": "url", "url": url}, "parse_options": {}}
    async with api.post(rev["links"]["create_source"], json=body) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
    assert created["resource"]["source_type"]["url"] == url
    return rev, await settled(server, api, created["links"]["show"])


async def test_url_source_is_fetched_parsed_and_applied(
    limited: tuple[RunningServer, aiohttp.ClientSession], files: FileServer
) -> None:
    server, api = limited
    rev, source = await _url_source(server, api, f"{files.url}/data.csv")
    resource = source["resource"]
    assert resource["failed_at"] is None
    assert resource["finished_at"] is not None
    assert resource["filesize"] == len(CSV)
    assert resource["content_type"] == "text/csv"
    assert resource["source_type"]["filename"] == "data.csv"
    out = latest_output_schema(source)
    assert [c["field_name"] for c in out["output_columns"]] == ["id", "city"]
    assert out["total_rows"] == 3
    async with api.put(rev["links"]["apply"], json={"output_schema_id": out["id"]}) as resp:
        assert resp.status == 200, await resp.text()
    await server.state.drain()
    ff = rev["resource"]["fourfour"]
    async with api.get(f"/resource/{ff}.json", params={"$order": "id"}) as resp:
        rows = await resp.json()
    assert [row["city"] for row in rows] == ["Oslo", "Lima", "Pune"]


async def test_url_too_large_fails_the_source(
    limited: tuple[RunningServer, aiohttp.ClientSession], files: FileServer
) -> None:
    server, api = limited
    url = f"{files.url}/big.csv"
    _rev, source = await _url_source(server, api, url)
    resource = source["resource"]
    assert resource["failed_at"] is not None
    assert resource["finished_at"] is None
    assert resource["schemas"] == []
    assert resource["failure_details"] == {
        "key": "url_too_large",
        "message": f"the file at {url} is larger than the server's limit of {SIZE_LIMIT} "
        f"bytes (more than {SIZE_LIMIT} bytes arrived); ask the operator to raise "
        "dsmsyncd serve --url-fetch-max-bytes",
    }
    assert not server.state.uploads_dir.joinpath(str(resource["id"])).exists()


async def test_url_answering_404_fails_the_source(
    limited: tuple[RunningServer, aiohttp.ClientSession], files: FileServer
) -> None:
    server, api = limited
    url = f"{files.url}/missing.csv"
    _rev, source = await _url_source(server, api, url)
    assert source["resource"]["failure_details"] == {
        "key": "url_fetch_failed",
        "message": f"fetching {url} answered HTTP 404 Not Found; a url source needs an "
        "address that answers 200 with the file",
    }


async def test_url_that_never_answers_fails_at_the_time_limit(
    limited: tuple[RunningServer, aiohttp.ClientSession], files: FileServer
) -> None:
    server, api = limited
    url = f"{files.url}/slow.csv"
    _rev, source = await _url_source(server, api, url)
    assert not files.never.is_set()  # the file server never answered: the limit ended it
    assert source["resource"]["failure_details"] == {
        "key": "url_fetch_timeout",
        "message": f"fetching {url} took longer than the server's limit of {TIME_LIMIT:g}s "
        "and was stopped; serve the file faster or ask the operator to raise "
        "dsmsyncd serve --url-fetch-timeout",
    }


async def test_url_with_another_scheme_is_refused(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    for url, said in (
        ("file:///etc/passwd", "the 'file' scheme is refused"),
        ("ftp://example.org/a.csv", "the 'ftp' scheme is refused"),
        ("example.org/a.csv", "a URL without a scheme is refused"),
    ):
        body = {"source_type": {"type": "url", "url": url}, "parse_options": {}}
        reply = await refused(
            api,
            "POST",
            rev["links"]["create_source"],
            BAD_FIELD,
            "invalid field 'source_type.url': only http and https URLs can be fetched",
            said,
            body=body,
        )
        assert reply["data"] == {"field": "source_type.url"}
    body = {"source_type": {"type": "url"}, "parse_options": {}}
    await refused(
        api,
        "POST",
        rev["links"]["create_source"],
        BAD_FIELD,
        "invalid field 'source_type.url': a url source names the file to fetch",
        body=body,
    )


async def test_connection_agent_source_fails_at_once(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    source_type = {
        "type": "connection_agent",
        "agent_uid": "abcd-1234",
        "namespace": "ns",
        "path": ["a"],
        "parameters": {},
    }
    body = {"source_type": source_type, "parse_options": {}}
    async with api.post(rev["links"]["create_source"], json=body) as resp:
        assert resp.status == 201, await resp.text()
        created = (await resp.json())["resource"]
    # Already failed in the create reply: a poller stops at its first look.
    assert created["failed_at"] is not None
    assert created["failure_details"] == {
        "key": "connection_agent_unavailable",
        "message": "the local server has no connection agent, so a 'connection_agent' "
        "source cannot be loaded here; upload the file instead (or give a url source its "
        "http(s) address)",
    }
