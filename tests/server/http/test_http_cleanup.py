"""Discarding a revision or deleting a dataset removes its files and tables in the background.

Background removal is awaited with ``ServerState.drain`` (it is a spawned task), never
with a sleep. Table existence is read through the row store's own worker, as the
server itself does (``view_sources``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from dsmsyncd.server.catalog.metastore import Kind
from dsmsyncd.server.catalog.views import dataset_table
from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.storage import uploads
from dsmsyncd.server.storage.sql import relation_exists
from tests.server.http.flows import (
    assert_refused,
    assert_refused_reply,
    commit_url,
    fill,
    latest_output_schema,
    new_dataset,
    new_source,
    send_chunk,
    settled,
    upload,
)
from tests.server.http.seams import HeldParse
from tests.support.local_server import ALICE, API, basic_auth, local_server

CSV = b"id,name\n1,a\n2,b\nbroken\n"
ALICE_HEADERS = {"Authorization": basic_auth(*ALICE)}


async def _exists(server: RunningServer, table: str) -> bool:
    return await server.state.rows._run(relation_exists, table)


async def _tables(server: RunningServer, source: dict[str, Any]) -> list[str]:
    sid = source["resource"]["id"]
    names = [f"in_{sid}", f"in_{sid}__row_errors"]
    for schema in source["resource"]["schemas"]:
        names += [f"out_{o['id']}" for o in schema["output_schemas"]]
    return names


def _upload_dir(server: RunningServer, source: dict[str, Any]) -> Path:
    return uploads.source_dir(server.state.uploads_dir, int(source["resource"]["id"]))


async def _parsed_source(
    server: RunningServer, api: aiohttp.ClientSession, rev: dict[str, Any]
) -> dict[str, Any]:
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    shown = await settled(server, api, source["links"]["show"])
    for table in await _tables(server, shown):
        assert await _exists(server, table), table
    assert _upload_dir(server, shown).is_dir()
    return shown


async def _parsed_then_discarded(
    server: RunningServer, api: aiohttp.ClientSession
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new dataset's revision with a parsed source, then discarded: (revision, source)."""
    rev = await new_dataset(api)
    source = await _parsed_source(server, api, rev)
    status, _ = await _status(api, "DELETE", rev["links"]["show"])
    assert status == 201
    return rev, source


async def _next_revision(api: aiohttp.ClientSession, rev: dict[str, Any]) -> dict[str, Any]:
    """Another revision (update) of the dataset ``rev`` belongs to; its envelope."""
    body = {"action": {"type": "update"}}
    async with api.post(f"{API}/revision/{rev['resource']['fourfour']}", json=body) as resp:
        assert resp.status == 201, await resp.text()
        envelope: dict[str, Any] = await resp.json()
    return envelope


def _rows_url(source: dict[str, Any]) -> str:
    out = latest_output_schema(source)
    template = source["links"]["input_schema_links"]["output_schema_links"]["rows"]
    return fill(template, input_schema_id=out["input_schema_id"], output_schema_id=out["id"])


async def _status(api: aiohttp.ClientSession, method: str, url: str) -> tuple[int, Any]:
    async with api.request(method, url) as resp:
        return resp.status, await resp.json()


async def test_discard_removes_tables_and_keeps_only_the_files_a_restore_needs(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    first = await _parsed_source(server, api, rev)
    second = await _parsed_source(server, api, rev)
    status, _ = await _status(api, "DELETE", rev["links"]["show"])
    assert status == 201
    await server.state.drain()
    for source in (first, second):
        kept = sorted(p.name for p in _upload_dir(server, source).iterdir())
        assert kept == [uploads.FINAL_NAME]
        for table in await _tables(server, source):
            assert not await _exists(server, table), table


async def test_discard_with_keep_discarded_0_removes_the_files_at_once(tmp_path: Path) -> None:
    async with (
        local_server(tmp_path / "srv", keep_discarded_seconds=0) as server,
        aiohttp.ClientSession(base_url=server.url, headers=ALICE_HEADERS) as api,
    ):
        rev = await new_dataset(api)
        source = await _parsed_source(server, api, rev)
        status, _ = await _status(api, "DELETE", rev["links"]["show"])
        assert status == 201
        await server.state.drain()
        assert not _upload_dir(server, source).exists()
        for table in await _tables(server, source):
            assert not await _exists(server, table), table


async def test_discarded_source_reads_answer_410_not_500(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await _parsed_then_discarded(server, api)
    await server.state.drain()
    status, shown = await _status(api, "GET", source["links"]["show"])
    assert status == 200  # the documents stay
    assert shown["resource"]["schemas"]
    out = latest_output_schema(source)
    schema_links = source["links"]["input_schema_links"]
    reads = [
        _rows_url(source),
        fill(schema_links["row_errors"], input_schema_id=out["input_schema_id"]),
        f"{rev['links']['show']}/source/download/{source['resource']['id']}",
    ]
    for url in reads:
        status, body = await _status(api, "GET", url)
        assert status == 410, (url, body)
        assert body["key"] == "source_removed"
        assert "upload the file again" in body["message"]


async def test_discard_keeps_sources_an_open_revision_still_applies(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await _parsed_source(server, api, rev)
    other = await _next_revision(api, rev)
    osid = latest_output_schema(source)["id"]
    async with api.put(other["links"]["show"], json={"output_schema_id": osid}) as resp:
        assert resp.status == 202, await resp.text()
    await _status(api, "DELETE", rev["links"]["show"])
    await server.state.drain()
    assert _upload_dir(server, source).is_dir()
    for table in await _tables(server, source):
        assert await _exists(server, table), table
    async with api.get(_rows_url(source)) as resp:
        assert resp.status == 200


async def test_discard_refuses_later_use_of_removed_output_schema(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev, source = await _parsed_then_discarded(server, api)
    other = await _next_revision(api, rev)
    body = {"output_schema_id": latest_output_schema(source)["id"]}
    async with api.put(other["links"]["show"], json=body) as resp:
        await assert_refused_reply(resp, 400, "invalid_field", "rows were removed")


async def test_discard_during_parse_leaves_no_table_behind(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])  # the parse is spawned, not awaited
    await _status(api, "DELETE", rev["links"]["show"])
    await server.state.drain()
    sid = source["resource"]["id"]
    assert not await _exists(server, f"in_{sid}")
    kept = [p.name for p in _upload_dir(server, source).iterdir()]
    assert kept == [uploads.FINAL_NAME]  # the complete file, kept for a restore
    meta = server.state.meta
    for schema in meta.children(Kind.INPUT_SCHEMA, sid):
        for out in meta.children(Kind.OUTPUT_SCHEMA, schema["id"]):
            assert not await _exists(server, out["_table"])


async def test_discard_during_parse_fails_the_source_as_discarded(
    server: RunningServer, api: aiohttp.ClientSession, held_parse: HeldParse
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    await held_parse.started.wait()  # the parse is running now
    status, discarded = await _status(api, "DELETE", rev["links"]["show"])
    assert status == 201
    assert discarded["resource"]["closed_at"] is not None
    ref = f"{rev['resource']['fourfour']}/{rev['resource']['revision_seq']}"
    status, shown = await _status(api, "GET", source["links"]["show"])
    assert status == 200
    assert shown["resource"]["failed_at"] is not None
    assert shown["resource"]["failure_details"] == {
        "key": "revision_discarded",
        "message": f"revision {ref} was discarded before this source finished uploading "
        "and parsing; its work was stopped",
    }
    held_parse.release.set()
    after = await settled(server, api, source["links"]["show"])
    assert after["resource"]["schemas"] == []
    assert after["resource"]["failed_at"] == shown["resource"]["failed_at"]
    assert after["resource"]["failure_details"]["key"] == "revision_discarded"
    assert not await _exists(server, f"in_{source['resource']['id']}")


async def test_discard_during_chunked_upload_fails_the_source_as_discarded(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await send_chunk(api, source, 0, 0, CSV[:8])
    status, _ = await _status(api, "DELETE", rev["links"]["show"])
    assert status == 201
    await server.state.drain()
    status, shown = await _status(api, "GET", source["links"]["show"])
    assert shown["resource"]["failure_details"]["key"] == "revision_discarded"
    assert shown["resource"]["finished_at"] is None
    async with api.post(commit_url(source, 1, len(CSV))) as resp:
        await assert_refused_reply(resp, 409, "revision_closed", "belongs to closed revision")
    assert not _upload_dir(server, source).exists()


async def test_discard_leaves_a_parsed_source_as_it_was(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await _parsed_then_discarded(server, api)
    status, shown = await _status(api, "GET", source["links"]["show"])
    assert status == 200
    assert shown["resource"]["failed_at"] is None
    assert shown["resource"]["finished_at"] is not None


async def test_delete_view_removes_every_revision_and_the_dataset_table(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    ff = rev["resource"]["fourfour"]
    applied = await _parsed_source(server, api, rev)
    async with api.put(rev["links"]["apply"], json={}) as resp:
        assert resp.status == 200, await resp.text()
    await server.state.drain()
    assert await _exists(server, dataset_table(ff))
    second_rev = await _next_revision(api, rev)
    pending = await _parsed_source(server, api, second_rev)
    status, _ = await _status(api, "DELETE", f"/api/views/{ff}")
    assert status == 200
    await server.state.drain()
    assert not await _exists(server, dataset_table(ff))
    for source in (applied, pending):
        assert not _upload_dir(server, source).exists()
        for table in await _tables(server, source):
            assert not await _exists(server, table), table
    status, refused = await _status(api, "GET", applied["links"]["show"])
    assert status == 404
    assert_refused(refused, "not_found", f"dataset {ff} does not exist")
