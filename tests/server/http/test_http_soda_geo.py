"""Geo filters over SODA: within_circle, within_box, distance_in_meters (haversine)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.server.http.flows import call, publish, refused
from tests.server.http.soda_data import PERMITS


async def rows_of(api: aiohttp.ClientSession, ff: str, query: str) -> Any:
    status, body = await call(api, "GET", f"/resource/{ff}.json?{query}")
    assert status == 200, body
    return body


async def test_within_circle_and_within_box(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    cases = {
        "within_circle(location, 47.6, -122.3, 1000)": [{"permit": "A1"}],
        "within_circle(location, 47.65, -122.35, 20000)": [{"permit": "A1"}, {"permit": "A2"}],
        "within_circle(location, 40.75, -73.98, 10) OR permit = 'A3'": [
            {"permit": "A3"},
            {"permit": "A4"},
        ],
        "within_box(location, 48, -123, 47, -122)": [{"permit": "A1"}, {"permit": "A2"}],
        "within_box(location, 47.65, -123, 47, -122)": [{"permit": "A1"}],
        "NOT within_box(location, 48, -123, 47, -122)": [{"permit": "A3"}, {"permit": "A4"}],
    }
    for where, expected in cases.items():
        body = await rows_of(api, ff, f"$select=permit&$where={where}&$order=permit")
        assert (where, body) == (where, expected)


async def test_distance_in_meters(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    distance = "round(distance_in_meters(location, 'POINT (-122.3 47.6)'), 0)"
    body = await rows_of(api, ff, f"$select=permit, {distance} AS d&$order=d")
    assert body == [
        {"permit": "A1", "d": "0"},
        {"permit": "A2", "d": "13407"},
        {"permit": "A4", "d": "3863224"},
        {"permit": "A3"},
    ]
    near = "$select=count(*)&$where=distance_in_meters(location, location) = 0"
    assert await rows_of(api, ff, near) == [{"count": "3"}]


async def test_geo_filter_mistakes_are_400s(api: aiohttp.ClientSession) -> None:
    ff, _ = await publish(api, PERMITS)
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?$where=within_circle(fee, 1, 2, 3)",
        (400, "query.soql.type-mismatch"),
        "invalid $where: within_circle argument 1 must be a point, not number",
    )
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?$where=within_box(location, 1, 2)",
        (400, "query.soql.type-mismatch"),
        "invalid $where: within_box takes 5 arguments, not 3",
    )
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?$where=within_circle(location, 'north', 2, 3)",
        (400, "query.soql.type-mismatch"),
        "invalid $where: within_circle argument 2 must be a number, not text",
    )
