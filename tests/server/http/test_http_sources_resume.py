"""Unfinished parses and transforms are restarted when the server starts again."""

from __future__ import annotations

import aiohttp

from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.jobs.resume_parse import resume
from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import latest_output_schema, new_dataset, new_source, settled, upload

CSV = b"id,name\n1,a\n2,b\n"


async def test_resume_reparses_a_source_left_without_schema(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    await server.state.drain()
    meta = server.state.meta
    for schema in meta.children(Kind.INPUT_SCHEMA, source["resource"]["id"]):
        meta.delete(Kind.INPUT_SCHEMA, schema["id"])
    assert resume(server.state) == 1
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["schemas"][0]["total_rows"] == 2
    assert latest_output_schema(shown)["completed_at"] is not None


async def test_resume_finishes_an_interrupted_output_schema(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    meta = server.state.meta
    doc = meta.get(Kind.OUTPUT_SCHEMA, out["id"])
    assert doc is not None
    doc["completed_at"] = doc["finished_at"] = None
    meta.put(Kind.OUTPUT_SCHEMA, out["id"], doc)
    assert resume(server.state) == 1
    again = await settled(server, api, source["links"]["show"])
    assert latest_output_schema(again)["completed_at"] is not None
