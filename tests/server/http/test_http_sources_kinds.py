"""Source kinds (view, blob, config-driven), failures, missing ids and access rules."""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    assert_refused_reply,
    latest_output_schema,
    new_dataset,
    new_source,
    settled,
    upload,
)
from tests.support.local_server import API

CSV = b"id,name,amount\n1,a,10\n2,b,20\n"


async def _published(server: RunningServer, api: aiohttp.ClientSession) -> str:
    """A dataset whose CSV has been applied; returns its fourfour."""
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    async with api.put(rev["links"]["apply"], json={"output_schema_id": out["id"]}) as resp:
        assert resp.status in (200, 202), await resp.text()
    await server.state.drain()
    return str(rev["resource"]["fourfour"])


async def _new_revision(
    api: aiohttp.ClientSession, fourfour: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with api.post(f"{API}/revision/{fourfour}", json=body) as resp:
        assert resp.status == 201, await resp.text()
        envelope: dict[str, Any] = await resp.json()
    return envelope


async def test_view_source_has_schemas_at_once(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    fourfour = await _published(server, api)
    rev = await _new_revision(api, fourfour, {"action": {"type": "update"}, "metadata": {}})
    source = await new_source(api, rev, source_type={"type": "view", "fourfour": fourfour})
    resource = source["resource"]
    assert resource["source_type"]["loaded"] is True
    schema = resource["schemas"][0]
    types = {c["field_name"]: c["soql_type"] for c in schema["input_columns"]}
    assert types == {"id": "number", "name": "text", "amount": "number"}
    exprs = [
        c["transform"]["transform_expr"] for c in schema["output_schemas"][0]["output_columns"]
    ]
    assert exprs == ["`id`", "`name`", "`amount`"]
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    assert out["completed_at"] is not None
    assert out["total_rows"] == 2
    assert out["error_count"] == 0


async def test_view_source_with_typed_columns_applies_its_rows(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    """A view source's input columns are typed (numbers here): read as they are, not
    compared with '' (which would cast '' to a number and fail every read of them)."""
    fourfour = await _published(server, api)
    rev = await _new_revision(api, fourfour, {"action": {"type": "replace"}, "metadata": {}})
    source = await new_source(api, rev, source_type={"type": "view", "fourfour": fourfour})
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    async with api.put(rev["links"]["apply"], json={"output_schema_id": out["id"]}) as resp:
        assert resp.status in (200, 202), await resp.text()
    await server.state.drain()
    async with api.get(f"{API}/revision/{fourfour}/{rev['resource']['revision_seq']}") as resp:
        revision = (await resp.json())["resource"]
    assert revision["closed_at"] is not None, revision
    async with api.get(f"/resource/{fourfour}.json?$order=id") as resp:
        assert resp.status == 200, await resp.text()
        rows = await resp.json()
    assert rows == [
        {"id": "1", "name": "a", "amount": "10"},
        {"id": "2", "name": "b", "amount": "20"},
    ]


async def test_blob_source_is_stored_not_parsed(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    options = {**source["resource"]["parse_options"], "parse_source": False}
    async with api.post(source["links"]["update"], json={"parse_options": options}) as resp:
        assert resp.status == 200
        updated = await resp.json()
    assert updated["resource"]["id"] == source["resource"]["id"]
    await upload(api, updated, b"%PDF-1.4 not a csv", [])
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["schemas"] == []
    assert shown["resource"]["finished_at"] is not None
    async with api.get(rev["links"]["show"]) as resp:
        revision = (await resp.json())["resource"]
    assert revision["blob_id"] == source["resource"]["id"]


async def test_unparsable_file_fails_the_source(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, b"\x00\x01\x02\x03binary\x00\xff\xfe" * 50, [])
    shown = await settled(server, api, source["links"]["show"])
    resource = shown["resource"]
    assert resource["failed_at"] is not None
    assert resource["failure_details"]["key"] == "unparsable_file"
    assert resource["failure_details"]["message"]
    assert resource["schemas"] == []


async def test_config_revision_uses_config_columns_and_reports_bad_ones(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    fourfour = await _published(server, api)
    config = {
        "name": "nightly",
        "data_action": "replace",
        "parse_options": {"header_count": 1},
        "columns": [
            {"field_name": "id", "transform_expr": "to_number(`id`)"},
            {"field_name": "label", "transform_expr": "upper(`name`)"},
            {"field_name": "broken", "transform_expr": "to_number(`no_such_column`)"},
        ],
    }
    async with api.post(f"{API}/config", json=config) as resp:
        assert resp.status == 201, await resp.text()
    rev = await _new_revision(api, fourfour, {"config": "nightly"})
    source = await new_source(api, rev)
    await upload(api, source, CSV, [])
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    columns = {c["field_name"]: c["transform"] for c in out["output_columns"]}
    assert list(columns) == ["id", "label", "broken"]
    assert columns["label"]["failed_at"] is None
    assert columns["broken"]["failed_at"] is not None
    assert columns["broken"]["failure_details"]["type"] == "unknown_column"
    assert out["completed_at"] is not None
    async with api.get(
        shown["links"]["input_schema_links"]["output_schema_links"]["rows"]
        .replace("{input_schema_id}", str(out["input_schema_id"]))
        .replace("{output_schema_id}", str(out["id"]))
    ) as resp:
        rows = await resp.json()
    assert rows[1]["row"][:2] == [{"ok": "1"}, {"ok": "A"}]


async def test_unknown_ids_are_404(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    sid = source["resource"]["id"]
    for url in (
        f"{API}/source/999999",
        f"{API}/source/abc",
        f"{API}/source/{sid}/schema/999999",
        f"{API}/source/{sid}/schema/1/output/999",
        f"{API}/source/{sid}/transform/999999",
        f"{API}/revision/{rev['resource']['fourfour']}/99/source",
        f"{API}/revision/zzzz-zzzz/0/source",
    ):
        async with api.get(url) as resp:
            assert (await resp.json())["error"] is True
            await assert_refused_reply(resp, 404, "not_found", "does not exist")


async def test_sources_of_another_users_revision_are_refused(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession, anon_api: aiohttp.ClientSession
) -> None:
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    body = {"source_type": {"type": "upload", "filename": "x.csv"}, "parse_options": {}}
    async with bob_api.post(rev["links"]["create_source"], json=body) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "only the owner of dataset")
    async with anon_api.post(rev["links"]["create_source"], json=body) as resp:
        await assert_refused_reply(resp, 401, "authentication_required", "needs credentials")
    async with bob_api.get(source["links"]["show"]) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "only the owner of dataset")
    async with anon_api.get(source["links"]["show"]) as resp:
        await assert_refused_reply(resp, 401, "authentication_required", "needs credentials")
    headers = {"Content-Type": "application/octet-stream"}
    chunk = source["links"]["chunk"].format(seq_num=0, byte_offset=0)
    async with bob_api.post(chunk, data=b"x", headers=headers) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "only the owner of dataset")
    async with bob_api.get(rev["links"]["list_sources"]) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "only the owner of dataset")


async def test_standalone_source_is_its_creators_only(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession
) -> None:
    async with api.post(f"{API}/source", json={"source_type": {"type": "upload"}}) as resp:
        source = await resp.json()
    async with bob_api.get(source["links"]["show"]) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "belongs to another user")
    bob_rev = await new_dataset(bob_api)
    target = {"fourfour": bob_rev["resource"]["fourfour"], "revision_seq": 0}
    async with bob_api.patch(source["links"]["add_to_revision"], json=target) as resp:
        await assert_refused_reply(resp, 403, "permission_denied", "belongs to another user")


async def test_source_on_a_closed_revision_is_refused(api: aiohttp.ClientSession) -> None:
    rev = await new_dataset(api)
    async with api.delete(rev["links"]["discard"]) as resp:
        assert resp.status in (200, 201)
    body = {"source_type": {"type": "upload", "filename": "x.csv"}, "parse_options": {}}
    async with api.post(rev["links"]["create_source"], json=body) as resp:
        await assert_refused_reply(resp, 409, "revision_closed", "is closed (applied or discarded)")


async def test_update_upload_keeps_the_published_column_types(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    fourfour = await _published(server, api)
    rev = await _new_revision(api, fourfour, {"action": {"type": "update"}, "metadata": {}})
    source = await new_source(api, rev)
    await upload(api, source, b"id,name,amount\n3,c,x\n", [])
    shown = await settled(server, api, source["links"]["show"])
    out = latest_output_schema(shown)
    exprs = {c["field_name"]: c["transform"]["transform_expr"] for c in out["output_columns"]}
    assert exprs["amount"] == "to_number(`amount`)"
    assert out["error_count"] == 1
