"""Getting a source's bytes in: chunked uploads (digest §3d) and whole-body uploads."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    assert_refused_reply,
    commit,
    commit_url,
    new_dataset,
    new_upload_source,
    send_chunk,
    settled,
    split,
    upload,
)
from tests.support.local_server import API

CSV = b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i) for i in range(200))


async def _download(api: aiohttp.ClientSession, rev: dict[str, Any], sid: int) -> bytes:
    url = f"{rev['links']['show']}/source/download/{sid}"
    async with api.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def test_chunks_in_order_assemble_the_file(api: aiohttp.ClientSession) -> None:
    rev, source = await new_upload_source(api)
    for seq, offset, data in split(CSV, [100, 100, 100]):
        reply = await send_chunk(api, source, seq, offset, data)
        assert reply == {
            "resource": {
                "seq_num": seq,
                "byte_offset": offset,
                "end_byte_offset": offset + len(data),
            },
            "links": {},
        }
    pieces = split(CSV, [100, 100, 100])
    async with api.post(commit_url(source, len(pieces) - 1, len(CSV))) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["resource"]["filesize"] == len(CSV)
    assert body["resource"]["finished_at"] is not None
    assert await _download(api, rev, source["resource"]["id"]) == CSV


async def test_chunks_out_of_order_assemble_the_file(api: aiohttp.ClientSession) -> None:
    rev, source = await new_upload_source(api)
    pieces = split(CSV, [64, 64, 64, 64])
    for seq, offset, data in reversed(pieces):
        await send_chunk(api, source, seq, offset, data)
    resp = await commit(api, source, len(pieces) - 1, len(CSV))
    assert resp.status == 200
    assert await _download(api, rev, source["resource"]["id"]) == CSV


async def test_parallel_uneven_chunks_assemble_the_file(api: aiohttp.ClientSession) -> None:
    rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [1, 500, 7, 1000, 33])
    assert await _download(api, rev, source["resource"]["id"]) == CSV


async def test_resent_chunk_replaces_the_first(api: aiohttp.ClientSession) -> None:
    rev, source = await new_upload_source(api)
    pieces = split(CSV, [100])
    await send_chunk(api, source, 0, 0, b"x" * 100)
    await asyncio.gather(*(send_chunk(api, source, s, o, d) for s, o, d in pieces))
    await send_chunk(api, source, 0, 0, pieces[0][2])
    resp = await commit(api, source, 1, len(CSV))
    assert resp.status == 200
    assert await _download(api, rev, source["resource"]["id"]) == CSV


# test name → chunks sent as (seq, offset, bytes), the commit's (last seq, total bytes),
# and what the 400's message must say
BAD_COMMITS: dict[str, tuple[list[tuple[int, int, bytes]], tuple[int, int], list[str]]] = {
    "gap_names_the_missing_bytes": (
        [(0, 0, b"a" * 10), (1, 10, b"b" * 10), (2, 22, b"c" * 10)],
        (2, 32),
        ["chunk 2 starts at byte 22 but chunk 1 ends at byte 20", "bytes 20-22 missing"],
    ),
    "overlap_names_it": (
        [(0, 0, b"a" * 10), (1, 8, b"b" * 10)],
        (1, 18),
        ["bytes 8-10 sent twice"],
    ),
    "missing_chunk_names_it": (
        [(0, 0, b"a" * 10), (2, 20, b"c" * 10)],
        (2, 30),
        ["chunk 1 of 0..2 was never received"],
    ),
    "wrong_total_names_both": ([(0, 0, b"a" * 10)], (0, 11), ["end at byte 10", "11 bytes"]),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMITS))
async def test_commit_with(api: aiohttp.ClientSession, case: str) -> None:
    chunks, (last_seq, total), said = BAD_COMMITS[case]
    _rev, source = await new_upload_source(api)
    for seq, offset, data in chunks:
        await send_chunk(api, source, seq, offset, data)
    async with api.post(commit_url(source, last_seq, total)) as resp:
        await assert_refused_reply(resp, 400, "upload_incomplete", *said)


async def test_empty_commit_makes_an_empty_file(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await new_upload_source(api)
    resp = await commit(api, source, 0, 0)
    assert resp.status == 200
    assert await _download(api, rev, source["resource"]["id"]) == b""
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["filesize"] == 0


async def test_chunk_after_commit_is_refused(api: aiohttp.ClientSession) -> None:
    _rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [100])
    async with api.post(
        source["links"]["chunk"].format(seq_num=0, byte_offset=0),
        data=b"more",
        headers={"Content-Type": "application/octet-stream"},
    ) as resp:
        await assert_refused_reply(resp, 409, "already_uploaded", "already has its bytes")


async def test_repeated_commit_is_answered_again(api: aiohttp.ClientSession) -> None:
    _rev, source = await new_upload_source(api)
    await upload(api, source, CSV, [100])
    resp = await commit(api, source, 2, len(CSV))
    assert resp.status == 200


async def test_initiate_answers_the_upload_shape_unenveloped(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    async with api.post(source["links"]["initiate"], json={"content_type": "text/csv"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {
        "preferred_chunk_size": server.state.preferred_chunk_size,
        "preferred_upload_parallelism": server.state.preferred_upload_parallelism,
    }


async def test_whole_body_upload_streams_to_the_source(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await new_upload_source(api)
    headers = {"Content-Type": "text/csv", "X-File-Name": "C:\\exports\\people.csv"}
    async with api.post(source["links"]["bytes"], data=CSV, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        body = await resp.json()
    assert body["resource"]["filesize"] == len(CSV)
    assert body["resource"]["content_type"] == "text/csv"
    assert body["resource"]["source_type"]["filename"] == "people.csv"
    assert await _download(api, rev, source["resource"]["id"]) == CSV
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["schemas"][0]["total_rows"] == 200


async def test_whole_body_upload_twice_is_refused(api: aiohttp.ClientSession) -> None:
    _rev, source = await new_upload_source(api)
    headers = {"Content-Type": "text/csv"}
    async with api.post(source["links"]["bytes"], data=CSV, headers=headers) as resp:
        assert resp.status == 201
    async with api.post(source["links"]["bytes"], data=CSV, headers=headers) as resp:
        await assert_refused_reply(resp, 409, "already_uploaded", "already has its bytes")


async def test_revisionless_source_uploads_and_attaches(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    body = {"source_type": {"type": "upload", "filename": "a/b.csv"}}
    async with api.post(f"{API}/source", json=body) as resp:
        assert resp.status == 201
        source = await resp.json()
    assert source["resource"]["source_type"]["filename"] == "b.csv"
    await upload(api, source, CSV, [100])
    rev = await new_dataset(api)
    target = {"revision": {"fourfour": rev["resource"]["fourfour"], "revision_seq": 0}}
    async with api.patch(source["links"]["add_to_revision"], json=target) as resp:
        assert resp.status == 202
    async with api.get(rev["links"]["list_sources"]) as resp:
        listed = await resp.json()
    assert [s["resource"]["id"] for s in listed] == [source["resource"]["id"]]
    await server.state.drain()
