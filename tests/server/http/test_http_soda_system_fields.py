"""The system fields ``:id``, ``:created_at``, ``:updated_at`` over SODA."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import call, publish
from tests.server.http.soda_data import PERMITS, publish_keyed

FIXED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def rows_of(api: aiohttp.ClientSession, ff: str, query: str) -> Any:
    status, body = await call(api, "GET", f"/resource/{ff}.json?{query}")
    assert status == 200, body
    return body


async def test_system_fields_select_filter_and_order(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    everything = await rows_of(api, ff, "$select=:*, *&$order=:id&$limit=1")
    assert list(everything[0]) == [
        ":id",
        ":created_at",
        ":updated_at",
        "permit",
        "fee",
        "issued",
        "active",
        "location",
        "kind",
    ]
    assert everything[0][":id"] == "row-000000000001"
    assert FIXED.match(everything[0][":created_at"])
    assert everything[0][":updated_at"] == everything[0][":created_at"]
    assert "permit" in (await rows_of(api, ff, "$limit=1"))[0]
    assert ":id" not in (await rows_of(api, ff, "$limit=1"))[0]  # `*` has no system field
    # The documented stable paging: $order=:id with $limit/$offset.
    assert await rows_of(api, ff, "$select=:id, permit&$order=:id&$limit=2&$offset=2") == [
        {":id": "row-000000000003", "permit": "A3"},
        {":id": "row-000000000004", "permit": "A4"},
    ]
    assert await rows_of(api, ff, "$select=permit&$order=:id DESC&$limit=2") == [
        {"permit": "A4"},
        {"permit": "A3"},
    ]
    assert await rows_of(api, ff, "$select=permit&:id=row-000000000002") == [{"permit": "A2"}]
    assert await rows_of(api, ff, "$select=permit&$where=:id > 'row-000000000003'") == [
        {"permit": "A4"}
    ]
    since = "$select=count(*)&$where=:updated_at > '2001-01-01T00:00:00'"
    assert await rows_of(api, ff, since) == [{"count": "4"}]


async def test_upsert_keeps_id_and_created_at_and_bumps_updated_at_of_changed_rows(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    ff = await publish_keyed(server, api, PERMITS, "permit")
    query = "$select=:id, :created_at, :updated_at, permit, fee&$order=:id"
    before = {r["permit"]: r for r in await rows_of(api, ff, query)}
    update = (
        b"permit,fee,issued,active,location,kind\n"
        b"A2,300,2026-06-05T13:30:00,false,POINT (-122.4 47.7),deck\n"
        b"A5,5,2026-07-01T00:00:00,true,POINT (-122.5 47.5),fence\n"
        b"A3,100,,true,,fence\n"  # sent again unchanged
    )
    await publish_keyed(server, api, update, "permit", fourfour=ff)
    after = {r["permit"]: r for r in await rows_of(api, ff, query)}
    assert sorted(after) == ["A1", "A2", "A3", "A4", "A5"]
    assert after["A1"] == before["A1"]  # not in the update: untouched
    assert after["A3"] == before["A3"]  # the same values: not updated
    a2, old = after["A2"], before["A2"]
    assert (a2[":id"], a2[":created_at"], a2["fee"]) == (old[":id"], old[":created_at"], "300")
    assert a2[":updated_at"] > old[":updated_at"]
    assert after["A5"][":id"] == "row-000000000006"
    assert after["A5"][":created_at"] == after["A5"][":updated_at"] == a2[":updated_at"]
