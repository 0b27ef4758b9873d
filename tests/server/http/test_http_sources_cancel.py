"""The source ``cancel`` link, and the ``max_upload_bytes`` guard on chunks and bodies.

A parse "in progress" is held open deterministically by gating the row store's
``ingest`` on an event the test sets: the test knows the parse has started because the
gate says so, never because time has passed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.main import RunningServer, ServeOptions, start_server
from dsmsyncd.server.storage import uploads
from dsmsyncd.server.storage.sql import relation_exists
from tests.server.http.flows import (
    assert_refused,
    assert_refused_reply,
    commit_url,
    new_upload_source,
    send_chunk,
    settled,
    upload,
)
from tests.server.http.seams import HeldParse
from tests.support.local_server import ALICE, basic_auth

CSV = b"id,name\n1,a\n2,b\n"
LIMIT = 100


async def _cancel(api: aiohttp.ClientSession, source: dict[str, Any]) -> tuple[int, Any]:
    async with api.post(source["links"]["cancel"]) as resp:
        return resp.status, await resp.json()


def _upload_dir(server: RunningServer, source: dict[str, Any]) -> Path:
    return uploads.source_dir(server.state.uploads_dir, int(source["resource"]["id"]))


async def test_cancel_during_chunked_upload_fails_source_and_removes_chunks(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    await send_chunk(api, source, 0, 0, CSV[:8])
    assert _upload_dir(server, source).is_dir()
    status, body = await _cancel(api, source)
    assert status == 200
    resource = body["resource"]
    assert resource["failed_at"] is not None
    assert resource["failure_details"]["key"] == "cancelled"
    assert "cancelled" in resource["failure_details"]["message"]
    assert not _upload_dir(server, source).exists()
    url = str(source["links"]["chunk"]).format(seq_num=1, byte_offset=8)
    async with api.post(url, data=CSV[8:]) as resp:
        await assert_refused_reply(resp, 409, "cancelled", "was cancelled by its owner")
    async with api.post(commit_url(source, 1, len(CSV))) as resp:
        await assert_refused_reply(resp, 409, "cancelled", "was cancelled by its owner")
    assert not _upload_dir(server, source).exists()


async def test_cancel_during_parse_drops_its_table_and_never_finishes(
    server: RunningServer, api: aiohttp.ClientSession, held_parse: HeldParse
) -> None:
    _rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [])
    await held_parse.started.wait()
    status, body = await _cancel(api, source)
    assert status == 200
    assert body["resource"]["failure_details"]["key"] == "cancelled"
    held_parse.release.set()
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["schemas"] == []
    assert shown["resource"]["failure_details"]["key"] == "cancelled"
    sid = source["resource"]["id"]
    assert not await server.state.rows._run(relation_exists, f"in_{sid}")
    assert server.state.meta.children(Kind.INPUT_SCHEMA, sid) == []


async def test_cancel_after_source_finished_is_409(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [])
    await settled(server, api, source["links"]["show"])
    status, body = await _cancel(api, source)
    assert status == 409
    assert_refused(body, "already_finished", "has already finished; there is nothing to cancel")


async def test_cancel_twice_is_answered_the_same(api: aiohttp.ClientSession) -> None:
    _rev, source = await new_upload_source(api)
    first = await _cancel(api, source)
    second = await _cancel(api, source)
    assert first[0] == second[0] == 200
    assert first[1]["resource"]["failed_at"] == second[1]["resource"]["failed_at"]


async def test_cancel_by_other_user_is_refused(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    status, body = await _cancel(bob_api, source)
    assert status == 403
    assert_refused(body, "permission_denied", "only the owner of dataset")


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[tuple[RunningServer, aiohttp.ClientSession]]:
    """A server that refuses uploads over ``LIMIT`` bytes, and alice's session on it."""
    options = ServeOptions(data_dir=tmp_path / "data", users=[ALICE], max_upload_bytes=LIMIT)
    server = await start_server(options)
    try:
        headers = {"Authorization": basic_auth(*ALICE)}
        async with aiohttp.ClientSession(base_url=server.url, headers=headers) as session:
            yield server, session
    finally:
        await server.stop()


def _assert_names_limit(body: dict[str, Any]) -> None:
    assert_refused(body, "payload_too_large", f"larger than this server's limit of {LIMIT} bytes")
    assert body["data"] == {"max_upload_bytes": LIMIT}


async def test_max_upload_bytes_whole_body_over_limit_is_413(
    limited: tuple[RunningServer, aiohttp.ClientSession],
) -> None:
    server, api = limited
    _rev, source = await new_upload_source(api)
    headers = {"Content-Type": "text/csv"}
    async with api.post(source["links"]["bytes"], data=b"x" * (LIMIT + 1), headers=headers) as resp:
        assert resp.status == 413
        _assert_names_limit(await resp.json())
    assert not (_upload_dir(server, source) / uploads.FINAL_NAME).exists()


async def test_max_upload_bytes_streamed_body_without_length_is_413(
    limited: tuple[RunningServer, aiohttp.ClientSession],
) -> None:
    server, api = limited
    _rev, source = await new_upload_source(api)

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"y" * 40

    headers = {"Content-Type": "text/csv"}
    async with api.post(source["links"]["bytes"], data=pieces(), headers=headers) as resp:
        assert resp.status == 413
        _assert_names_limit(await resp.json())
    leftovers = list(_upload_dir(server, source).iterdir())
    assert leftovers == []


async def test_max_upload_bytes_chunk_past_limit_is_413(
    limited: tuple[RunningServer, aiohttp.ClientSession],
) -> None:
    _server, api = limited
    _rev, source = await new_upload_source(api)
    await send_chunk(api, source, 0, 0, b"z" * 60)
    url = str(source["links"]["chunk"]).format(seq_num=1, byte_offset=60)
    async with api.post(url, data=b"z" * 60) as resp:
        assert resp.status == 413
        _assert_names_limit(await resp.json())
    async with api.post(commit_url(source, 1, 120)) as resp:
        assert resp.status == 413
        _assert_names_limit(await resp.json())


async def test_max_upload_bytes_upload_within_limit_is_taken(
    limited: tuple[RunningServer, aiohttp.ClientSession],
) -> None:
    server, api = limited
    _rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [5])
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["schemas"][0]["total_rows"] == 2
