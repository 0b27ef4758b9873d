"""Chunks the server acknowledged survive its own kill -9: a resumed client can finish.

A real ``dsmsyncd serve`` process takes two of three chunks and is killed with SIGKILL;
started again on the same data dir, it takes the last chunk and the commit, and the
file parses and publishes whole. The dataset is an append dataset without a row
identifier, so a chunk counted twice or lost would show in the exact rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.server.http.flows import commit, latest_output_schema, new_dataset, new_source
from tests.server.http.flows import send_chunk as chunk_sent
from tests.server.http.flows import split as cut
from tests.server.http.test_http_apply_resume import _apply, _finished, _get, _session, _until
from tests.server.support.serve_process import serve_process, write_users
from tests.support.local_server import ALICE

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

        async def transformed() -> bool | None:
            shown = await _get(api, source["links"]["show"])
            done = shown["resource"]["schemas"] and latest_output_schema(shown)["completed_at"]
            return True if done else None

        await _until(transformed, "output schema")
        assert (await _finished(api, await _apply(api, revision)))["status"] == "successful"
        fourfour = revision["resource"]["fourfour"]
        rows = await _get(api, f"/resource/{fourfour}.json?$order=n&$limit=1000")
    assert [(int(r["n"]), r["label"]) for r in rows] == [(i, f"row-{i:05d}") for i in range(ROWS)]
