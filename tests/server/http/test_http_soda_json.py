"""SODA JSON rows and response headers as a hosted site sends them."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.server.http.flows import publish
from tests.server.http.soda_data import PERMITS

ROWS: list[dict[str, Any]] = [
    {
        "permit": "A1",
        "fee": "100",
        "issued": "2026-06-04T00:00:00.000",
        "active": True,
        "location": {"type": "Point", "coordinates": [-122.3, 47.6]},
        "kind": "fence",
    },
    {
        "permit": "A2",
        "fee": "250.5",
        "issued": "2026-06-05T13:30:00.000",
        "active": False,
        "location": {"type": "Point", "coordinates": [-122.4, 47.7]},
        "kind": "deck",
    },
    {"permit": "A3", "fee": "100", "active": True, "kind": "fence"},
    {
        "permit": "A4",
        "issued": "2026-06-04T00:00:00.000",
        "location": {"type": "Point", "coordinates": [-73.98, 40.75]},
        "kind": "Garden Shed",
    },
]
FIXED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def get(api: aiohttp.ClientSession, path: str, **headers: str) -> tuple[int, Any, Any]:
    async with api.get(path, headers=headers) as resp:
        json_reply = resp.status == 200 and resp.content_type == "application/json"
        body = await resp.json() if json_reply else await resp.read()
        return resp.status, resp.headers, body


async def test_rows_omit_nulls_and_show_milliseconds(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    status, headers, rows = await get(api, f"/resource/{ff}.json?$order=permit")
    assert (status, rows) == (200, ROWS)
    assert headers["Content-Type"] == "application/json;charset=utf-8"
    assert headers["X-SODA2-Fields"] == '["permit","fee","issued","active","location","kind"]'
    assert headers["X-SODA2-Types"] == (
        '["text","number","floating_timestamp","checkbox","point","text"]'
    )
    status, headers, rows = await get(
        api, f"/resource/{ff}.json?$select=permit,:created_at AS made&$order=permit&$limit=1"
    )
    assert [sorted(r) for r in rows] == [["made", "permit"]]
    assert FIXED.match(rows[0]["made"]), rows
    assert headers["X-SODA2-Fields"] == '["permit","made"]'
    assert headers["X-SODA2-Types"] == '["text","fixed_timestamp"]'


async def test_etag_and_if_none_match(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    path = f"/resource/{ff}.json?$order=permit"
    status, headers, _ = await get(api, path)
    etag = headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    status, again, body = await get(api, path, **{"If-None-Match": etag})
    assert (status, body, again["ETag"]) == (304, b"", etag)
    status, _, _ = await get(api, path, **{"If-None-Match": '"other", W/' + etag})
    assert status == 304
    _, other, _ = await get(api, path + "&$limit=1")
    assert other["ETag"] != etag  # another query is another reply
    _, csv_headers, _ = await get(api, f"/resource/{ff}.csv?$order=permit")
    assert csv_headers["ETag"] != etag  # another format too
    await publish(api, PERMITS, fourfour=ff)  # four more rows
    status, after, rows = await get(api, path, **{"If-None-Match": etag})
    assert status == 200
    assert len(rows) == 8
    assert after["ETag"] != etag


async def test_last_modified_and_if_modified_since(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    path = f"/resource/{ff}.json"
    status, headers, _ = await get(api, path)
    last = headers["Last-Modified"]
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", last)
    status, _, body = await get(api, path, **{"If-Modified-Since": last})
    assert (status, body) == (304, b"")
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    status, _, rows = await get(api, path, **{"If-Modified-Since": earlier})
    assert (status, len(rows)) == (200, 4)
    status, _, rows = await get(api, path, **{"If-Modified-Since": "not a date"})
    assert (status, len(rows)) == (200, 4)


async def test_a_blank_text_cell_is_null_and_left_out(api: aiohttp.ClientSession) -> None:
    """A blank cell is the absence of a value in a text column too, not ``""``."""
    ff, job = await publish(api, b"name,note\nA,\nB,kept\n")
    assert job["status"] == "successful", job["log"]
    async with api.get(f"/resource/{ff}.json?$order=name") as resp:
        assert await resp.json() == [{"name": "A"}, {"name": "B", "note": "kept"}]
    async with api.get(f"/resource/{ff}.json?$where=note IS NULL") as resp:
        assert await resp.json() == [{"name": "A"}]
