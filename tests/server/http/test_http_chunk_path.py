"""Every chunk is written once, at its offset, into the source's one file (issue 9).

The bytes on disk after a commit are exactly the uploaded bytes (by hash), and they
are the very file the chunks were written into (same inode: the commit renamed it, it
copied nothing). Chunks arrive out of order, a resent chunk with the same bytes changes
nothing, a resent chunk with other bytes replaces the first (the last complete send
wins, as before), a gap at commit names the missing bytes, and a real server killed
between the chunks and the commit keeps every chunk it acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from pathlib import Path
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.storage import chunks, uploads
from tests.server.http.flows import (
    assert_refused_reply,
    chunk_url,
    commit,
    commit_url,
    new_dataset,
    new_source,
    new_upload_source,
    send_chunk,
    split,
)
from tests.server.http.test_http_apply_resume import _session, _until
from tests.server.support.serve_process import GUARD_S, serve_process, write_users
from tests.support.local_server import ALICE, basic_auth

ROWS = 20_000
CSV = b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i) for i in range(ROWS))  # ~290 kB
SIZES = [40_000] * 7  # eight chunks: seven of 40 kB (some more than one read), the rest


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _upload_dir(server: RunningServer, source: dict[str, Any]) -> Path:
    return uploads.source_dir(server.state.uploads_dir, int(source["resource"]["id"]))


async def _initiate(api: aiohttp.ClientSession, source: dict[str, Any]) -> None:
    async with api.post(source["links"]["initiate"], json={"content_type": "text/csv"}) as resp:
        assert resp.status == 200, await resp.text()


async def _every_chunk_sent(
    api: aiohttp.ClientSession,
) -> tuple[dict[str, Any], list[tuple[int, int, bytes]]]:
    """A new source with every chunk of ``CSV`` sent in order, not committed."""
    _rev, source = await new_upload_source(api)
    pieces = split(CSV, SIZES)
    for seq, offset, data in pieces:
        await send_chunk(api, source, seq, offset, data)
    return source, pieces


async def test_out_of_order_chunks_land_in_one_file_that_commit_renames(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    await _initiate(api, source)
    pieces = split(CSV, SIZES)
    random.Random(9).shuffle(pieces)
    await asyncio.gather(*(send_chunk(api, source, s, o, d) for s, o, d in pieces[:4]))
    for seq, offset, data in pieces[4:]:
        await send_chunk(api, source, seq, offset, data)
    directory = _upload_dir(server, source)
    assert sorted(p.name for p in directory.iterdir()) == [chunks.JOURNAL_NAME, chunks.PART_NAME]
    written = (directory / chunks.PART_NAME).stat()
    assert written.st_size == len(CSV)

    assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    final = uploads.final_path(server.state.uploads_dir, int(source["resource"]["id"]))
    assert final.stat().st_ino == written.st_ino  # renamed, not copied
    assert _digest(final.read_bytes()) == _digest(CSV)
    assert sorted(p.name for p in directory.iterdir()) == [uploads.FINAL_NAME]


async def test_a_chunk_resent_with_the_same_bytes_changes_nothing(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    source, pieces = await _every_chunk_sent(api)
    seq, offset, data = pieces[3]
    again = await asyncio.gather(*(send_chunk(api, source, seq, offset, data) for _ in range(3)))
    resource = {"seq_num": seq, "byte_offset": offset, "end_byte_offset": offset + len(data)}
    assert [a["resource"] for a in again] == [resource] * 3
    directory = _upload_dir(server, source)
    assert chunks.received(directory)[seq] == chunks.ChunkInfo(seq, offset, len(data))

    assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    assert _digest((directory / uploads.FINAL_NAME).read_bytes()) == _digest(CSV)


async def test_a_chunk_resent_with_other_bytes_replaces_the_first(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    source, pieces = await _every_chunk_sent(api)
    seq, offset, data = pieces[2]
    other = data.replace(b"name", b"NAME")
    replaced = await send_chunk(api, source, seq, offset, other)
    assert replaced["resource"]["end_byte_offset"] == offset + len(other)

    assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    expected = CSV[:offset] + other + CSV[offset + len(data) :]
    directory = _upload_dir(server, source)
    assert _digest((directory / uploads.FINAL_NAME).read_bytes()) == _digest(expected)


async def _stuck_send(
    url: str, path: str, body: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """POST ``body`` announcing twice its length, send only ``body``, never close: a
    send hanging on a connection that is dead but not closed."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(*ALICE)}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {2 * len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return reader, writer


async def test_a_send_hanging_on_a_dead_connection_does_not_hold_up_the_resend_or_commit(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    pieces = split(CSV, SIZES)
    for seq, offset, data in pieces[:2] + pieces[3:]:
        await send_chunk(api, source, seq, offset, data)
    seq, offset, data = pieces[2]
    stuck, stuck_writer = await _stuck_send(
        server.url, chunk_url(source, seq, offset), data[: len(data) // 2]
    )
    journal = _upload_dir(server, source) / chunks.JOURNAL_NAME

    async def started() -> bool | None:
        await api.get(source["links"]["show"])  # paced by the server's answers
        return True if journal.read_text().count(f"{seq} -\n") == 1 else None

    await _until(started, "the stuck send")
    await send_chunk(api, source, seq, offset, data)  # the client's retry: answered
    assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    async with asyncio.timeout(GUARD_S):
        assert await stuck.read() == b""  # the commit stopped the stuck send: closed
    stuck_writer.close()
    final = uploads.final_path(server.state.uploads_dir, int(source["resource"]["id"]))
    assert _digest(final.read_bytes()) == _digest(CSV)


async def test_a_chunk_resent_at_another_offset_supersedes_the_first(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    pieces = split(CSV, SIZES)
    seq, offset, data = pieces[-1]
    await send_chunk(api, source, seq, offset + 1_000, data)  # a wrong offset, then the right
    for seq, offset, data in pieces:
        await send_chunk(api, source, seq, offset, data)

    assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    directory = _upload_dir(server, source)
    assert (directory / uploads.FINAL_NAME).read_bytes() == CSV  # trimmed to the commit's size


async def test_a_gap_at_commit_names_it_and_the_missing_chunk_then_completes_it(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await new_upload_source(api)
    pieces = split(CSV, SIZES)
    missing = pieces.pop(5)
    for seq, offset, data in reversed(pieces):
        await send_chunk(api, source, seq, offset, data)
    last = len(pieces)
    async with api.post(commit_url(source, last, len(CSV))) as resp:
        said = f"chunk 5 of 0..{last} was never received; resend it, then commit"
        await assert_refused_reply(resp, 400, "upload_incomplete", said)

    await send_chunk(api, source, *missing)
    assert (await commit(api, source, last, len(CSV))).status == 200
    directory = _upload_dir(server, source)
    assert _digest((directory / uploads.FINAL_NAME).read_bytes()) == _digest(CSV)


async def test_a_server_killed_between_chunks_and_commit_keeps_what_it_acknowledged(
    tmp_path: Path,
) -> None:
    users = write_users(tmp_path / "users", ALICE)
    data = tmp_path / "data"
    pieces = split(CSV, SIZES)
    async with serve_process(data, "--users-file", str(users)) as served:
        async with _session(served.url) as api:
            source = await new_source(api, await new_dataset(api))
            await _initiate(api, source)
            sent = [pieces[6], pieces[0], pieces[3], pieces[7], pieces[1]]
            await asyncio.gather(*(send_chunk(api, source, s, o, d) for s, o, d in sent))
        await served.kill()

    async with (
        serve_process(data, "--users-file", str(users)) as served,
        _session(served.url) as api,
    ):
        for seq, offset, piece in (pieces[2], pieces[4], pieces[5]):
            await send_chunk(api, source, seq, offset, piece)
        assert (await commit(api, source, len(pieces) - 1, len(CSV))).status == 200
    final = uploads.final_path(data / "uploads", int(source["resource"]["id"]))
    assert _digest(final.read_bytes()) == _digest(CSV)
