"""Chunks the server acknowledged survive its own kill -9: a resumed client can finish.

A real ``dsmsyncd serve`` process takes two of three chunks and is killed with SIGKILL;
started again on the same data dir, it takes the last chunk and the commit, and the
file parses and publishes whole. Killed in the middle of a chunk's body instead (frozen
at the ``upload-mid-chunk`` pause point), it keeps no part of that chunk: the next start
does not count that chunk as received (its bytes are in the file, but the journal never
said it was whole), so a commit asks for it, and the resent chunk completes the file. The dataset is
an append dataset without a row identifier, so a chunk counted twice or lost would show
in the exact rows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from dsmsyncd.server import pause_points
from dsmsyncd.server.storage import chunks
from tests.server.http.flows import (
    assert_refused_reply,
    commit,
    commit_url,
    latest_output_schema,
    new_dataset,
    new_source,
)
from tests.server.http.flows import send_chunk as chunk_sent
from tests.server.http.flows import split as cut
from tests.server.http.test_http_apply_resume import _apply, _finished, _get, _session, _until
from tests.server.support.serve_process import serve_process, write_users
from tests.support.local_server import ALICE, basic_auth

ROWS = 300
DATA = b"n,label\n" + b"".join(f"{i},row-{i:05d}\n".encode() for i in range(ROWS))


async def test_acknowledged_chunks_survive_a_server_kill_and_the_upload_finishes(
    tmp_path: Path,
) -> None:
    users = write_users(tmp_path / "users", ALICE)
    data = tmp_path / "data"
    pieces = cut(DATA, [1500, 1500])
    assert len(pieces) == 3
    async with serve_process(data, "--users-file", str(users)) as served:
        async with _session(served.url) as api:
            revision = await new_dataset(api)
            source = await new_source(api, revision)
            async with api.post(source["links"]["initiate"], json={"content_type": "text/csv"}):
                pass
            for seq, offset, piece in pieces[:2]:
                acknowledged = await chunk_sent(api, source, seq, offset, piece)
                assert acknowledged["resource"]["end_byte_offset"] == offset + len(piece)
        await served.kill()

    async with (
        serve_process(data, "--users-file", str(users)) as served,
        _session(served.url) as api,
    ):
        shown: dict[str, Any] = (await _get(api, source["links"]["show"]))["resource"]
        assert (shown["failed_at"], shown["finished_at"]) == (None, None)
        seq, offset, piece = pieces[2]
        await chunk_sent(api, source, seq, offset, piece)
        committed = await commit(api, source, seq, len(DATA))
        assert committed.status == 200
        rows = await _published_rows(api, source, revision, revision["resource"]["fourfour"])
    assert [(int(r["n"]), r["label"]) for r in rows] == [(i, f"row-{i:05d}") for i in range(ROWS)]


WIDE_ROWS = 40_000  # about 640 kB: its second chunk is more than one read (256 kB) long
WIDE = b"n,label\n" + b"".join(f"{i},row-{i:05d}\n".encode() for i in range(WIDE_ROWS))


async def _send_part_of_chunk(url: str, path: str, chunk: bytes, part: int) -> asyncio.StreamWriter:
    """POST ``chunk`` announcing all its bytes, send only the first ``part``, leave it open."""
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic_auth(*ALICE)}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(chunk)}\r\n\r\n"
    )
    writer.write(head.encode() + chunk[:part])
    await writer.drain()
    return writer


async def test_a_kill_mid_chunk_keeps_no_part_of_it_and_the_resent_chunk_finishes(
    tmp_path: Path,
) -> None:
    users = write_users(tmp_path / "users", ALICE)
    data = tmp_path / "data"
    (seq0, off0, first), (seq1, off1, second) = cut(WIDE, [200_000])
    async with serve_process(data, "--users-file", str(users)) as served:
        async with _session(served.url) as api:
            revision = await new_dataset(api)
            source = await new_source(api, revision)
            async with api.post(source["links"]["initiate"], json={"content_type": "text/csv"}):
                pass
            await chunk_sent(api, source, seq0, off0, first)
        await served.kill()

    env = {pause_points.ENV: pause_points.UPLOAD_MID_CHUNK}
    async with serve_process(data, "--users-file", str(users), env=env) as served:
        path = str(source["links"]["chunk"]).format(seq_num=seq1, byte_offset=off1)
        # More than one read of the server (256 kB), less than the whole chunk.
        sent = await _send_part_of_chunk(served.url, path, second, len(second) - 1000)
        assert await served.line() == f"dsmsyncd serve: paused at {pause_points.UPLOAD_MID_CHUNK}"
        await served.kill()
        sent.close()
    source_dir = data / "uploads" / str(source["resource"]["id"])
    assert (source_dir / chunks.PART_NAME).stat().st_size > off1, "killed mid-write"
    assert chunks.received(source_dir) == {seq0: chunks.ChunkInfo(seq0, off0, len(first))}

    async with (
        serve_process(data, "--users-file", str(users)) as served,
        _session(served.url) as api,
    ):
        async with api.post(commit_url(source, seq1, len(WIDE))) as refused:
            said = "chunk 1 of 0..1 was never received"
            await assert_refused_reply(refused, 400, "upload_incomplete", said)
        await chunk_sent(api, source, seq1, off1, second)
        assert (await commit(api, source, seq1, len(WIDE))).status == 200
        fourfour = revision["resource"]["fourfour"]
        rows = await _published_rows(api, source, revision, fourfour)
    assert [int(r["n"]) for r in rows] == list(range(WIDE_ROWS))


async def _published_rows(
    api: Any, source: dict[str, Any], revision: dict[str, Any], fourfour: str
) -> list[dict[str, Any]]:
    """Wait for the output schema, apply, and read every row back (in pages of 50,000)."""

    async def transformed() -> bool | None:
        shown = await _get(api, source["links"]["show"])
        done = shown["resource"]["schemas"] and latest_output_schema(shown)["completed_at"]
        return True if done else None

    await _until(transformed, "output schema")
    assert (await _finished(api, await _apply(api, revision)))["status"] == "successful"
    rows: list[dict[str, Any]] = await _get(api, f"/resource/{fourfour}.json?$order=n&$limit=50000")
    return rows
