"""A commit and an apply answer their work done when it ends within the short wait
(``jobs/short_wait.py``), and in progress, as before, when it does not."""

from __future__ import annotations

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    ADDRESSES_CSV,
    call,
    latest_output_schema,
    new_dataset,
    new_source,
    settled,
    upload,
)
from tests.server.http.seams import HeldParse


async def test_small_file_commit_and_apply_answer_done(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    # A wait no run reaches: the answers must then say done, whatever the machine's pace.
    server.state.answer_wait_s = 600.0
    revision = await new_dataset(api)
    source = await new_source(api, revision)
    committed = await upload(api, source, ADDRESSES_CSV, [40])
    [input_schema] = committed["resource"]["schemas"]
    assert input_schema["total_rows"] == 3
    output = latest_output_schema(committed)
    assert output["completed_at"] is not None
    body = {"output_schema_id": output["id"]}
    status, job = await call(api, "PUT", revision["links"]["apply"], body)
    assert status == 200, job
    assert job["resource"]["status"] == "successful"
    assert job["resource"]["finished_at"] is not None


async def test_commit_answers_in_progress_while_the_parse_runs(
    server: RunningServer, api: aiohttp.ClientSession, held_parse: HeldParse
) -> None:
    revision = await new_dataset(api)
    source = await new_source(api, revision)
    committed = await upload(api, source, ADDRESSES_CSV, [40])  # answered after the wait
    assert committed["resource"]["finished_at"] is not None  # the bytes are complete
    assert committed["resource"]["schemas"] == []  # not parsed yet: the parse is held
    await held_parse.started.wait()
    held_parse.release.set()
    after = await settled(server, api, source["links"]["show"])
    assert latest_output_schema(after)["completed_at"] is not None
