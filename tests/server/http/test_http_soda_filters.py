"""SODA simple filters (``?column=value``): the value is read as the column's type."""

from __future__ import annotations

import aiohttp

from tests.server.http.flows import call, publish, refused
from tests.server.http.soda_data import PERMITS


async def permits(api: aiohttp.ClientSession) -> str:
    ff, job = await publish(api, PERMITS)
    assert job["status"] == "successful", job["log"]
    return ff


async def test_simple_filters_compare_typed_values(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    expected = {
        "fee=100": [{"permit": "A1"}, {"permit": "A3"}],
        "fee=100.0": [{"permit": "A1"}, {"permit": "A3"}],
        "fee=250.5": [{"permit": "A2"}],
        "issued=2026-06-04T00:00:00": [{"permit": "A1"}, {"permit": "A4"}],
        "issued=2026-06-04T00:00:00.000": [{"permit": "A1"}, {"permit": "A4"}],
        "issued=2026-06-05T13:30:00": [{"permit": "A2"}],
        "active=false": [{"permit": "A2"}],
        "active=true": [{"permit": "A1"}, {"permit": "A3"}],
        "kind=fence": [{"permit": "A1"}, {"permit": "A3"}],
        "kind=Fence": [],  # 2.1 text matching is case-sensitive
        "kind=fence&fee=100": [{"permit": "A1"}, {"permit": "A3"}],
        "kind=deck&fee=100": [],
    }
    for query, rows in expected.items():
        status, body = await call(api, "GET", f"/resource/{ff}.json?$select=permit&{query}")
        assert (query, status, body) == (query, 200, rows)


async def test_simple_filter_value_of_the_wrong_type_is_a_400(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    body = await refused(
        api,
        "GET",
        f"/resource/{ff}.json?fee=lots",
        (400, "query.soql.type-mismatch"),
        "invalid fee: type mismatch: 'lots' is not a number value, the type of column `fee`",
    )
    assert body["data"] == {"parameter": "fee"}
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?issued=June 4th",
        (400, "query.soql.type-mismatch"),
        "invalid issued: type mismatch: 'June 4th' is not a calendar_date value",
    )
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?active=yes",
        (400, "query.soql.type-mismatch"),
        "invalid active: type mismatch: 'yes' is not a checkbox value",
    )


async def test_simple_filter_on_unknown_column_is_a_400(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?colour=red",
        (400, "query.soql.no-such-column"),
        "invalid colour: no such column `colour`",
    )


async def test_where_compares_typed_literals(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    where = "fee > 99 AND issued < '2026-06-05' AND active"
    status, body = await call(api, "GET", f"/resource/{ff}.json?$select=permit&$where={where}")
    assert (status, body) == (200, [{"permit": "A1"}])
