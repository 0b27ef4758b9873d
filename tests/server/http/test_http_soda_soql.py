"""SoQL over HTTP: aggregates, ``$group``/``$having``, ``$q`` and ``$query``."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp

from tests.server.http.flows import call, publish, refused
from tests.server.http.soda_data import PERMITS


async def permits(api: aiohttp.ClientSession) -> str:
    ff, job = await publish(api, PERMITS)
    assert job["status"] == "successful", job["log"]
    return ff


async def rows_of(api: aiohttp.ClientSession, ff: str, query: str) -> object:
    status, body = await call(api, "GET", f"/resource/{ff}.json?{query}")
    assert status == 200, body
    return body


async def test_group_having_and_aggregates_with_aliases(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    grouped = "$select=kind, count(*) AS n, sum(fee) AS total&$group=kind"
    assert await rows_of(api, ff, grouped + "&$order=kind") == [
        {"kind": "Garden Shed", "n": "1"},
        {"kind": "deck", "n": "1", "total": "250.5"},
        {"kind": "fence", "n": "2", "total": "200"},
    ]
    assert await rows_of(api, ff, grouped + "&$having=count(*) > 1") == [
        {"kind": "fence", "n": "2", "total": "200"}
    ]
    assert await rows_of(api, ff, grouped + "&$having=n = 1&$order=n DESC, kind&$limit=1") == [
        {"kind": "Garden Shed", "n": "1"}
    ]
    assert await rows_of(api, ff, grouped + "&$order=n DESC, kind&$offset=1") == [
        {"kind": "Garden Shed", "n": "1"},
        {"kind": "deck", "n": "1", "total": "250.5"},
    ]


async def test_aggregates_have_hosted_default_names(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    select = (
        "count(*), count(fee), count(distinct kind), sum(fee), min(fee), max(issued), min(kind)"
    )
    assert await rows_of(api, ff, f"$select={select}") == [
        {
            "count": "4",
            "count_fee": "3",
            "count_distinct_kind": "3",
            "sum_fee": "450.5",
            "min_fee": "100",
            "max_issued": "2026-06-05T13:30:00.000",
            "min_kind": "Garden Shed",
        }
    ]
    assert await rows_of(api, ff, "$select=avg(fee)&$where=kind='fence'") == [{"avg_fee": "100"}]
    assert await rows_of(api, ff, "$select=sum(fee)&$where=kind='none'") == [{}]


async def test_group_by_an_expression_or_its_alias(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    expected = [
        {"day": "2026-06-04T00:00:00.000", "n": "2"},
        {"day": "2026-06-05T00:00:00.000", "n": "1"},
        {"n": "1"},
    ]
    select = "$select=date_trunc_ymd(issued) AS day, count(*) AS n&$order=day"
    assert await rows_of(api, ff, select + "&$group=date_trunc_ymd(issued)") == expected
    assert await rows_of(api, ff, select + "&$group=day") == expected


async def test_full_text_search(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    assert await rows_of(api, ff, "$select=permit&$q=fence") == [
        {"permit": "A1"},
        {"permit": "A3"},
    ]
    assert await rows_of(api, ff, "$select=permit&$q=GARDEN  shed") == [{"permit": "A4"}]
    assert await rows_of(api, ff, "$select=permit&$q=shed a4") == [{"permit": "A4"}]
    assert await rows_of(api, ff, "$select=permit&$q=deck fence") == []
    assert await rows_of(api, ff, "$select=count(*)&$q=fence&$where=fee > 100") == [{"count": "0"}]


async def test_query_is_a_whole_statement(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    statements = {
        "SELECT kind, count(*) AS n WHERE fee IS NOT NULL GROUP BY kind HAVING n > 1 "
        "ORDER BY n DESC LIMIT 5": [{"kind": "fence", "n": "2"}],
        "SELECT permit WHERE kind = 'fence' ORDER BY permit DESC OFFSET 1": [{"permit": "A1"}],
        "select permit search 'deck'": [{"permit": "A2"}],
        "SELECT permit WHERE kind = 'where group by' ": [],
        "SELECT permit ORDER BY permit LIMIT 2 OFFSET 1": [{"permit": "A2"}, {"permit": "A3"}],
    }
    for statement, expected in statements.items():
        body = await rows_of(api, ff, "$query=" + quote(statement))
        assert (statement, body) == (statement, expected)
    # Simple filters still apply next to a statement.
    assert await rows_of(api, ff, "$query=SELECT permit&kind=deck") == [{"permit": "A2"}]


async def test_soql_mistakes_are_400s_that_say_what_to_fix(api: aiohttp.ClientSession) -> None:
    ff = await permits(api)
    cases = {
        "$select=permit, count(*)&$group=kind": (
            "query.soql.not-grouped",
            "invalid $select: column `permit` is neither grouped nor aggregated; add it to "
            "$group or use it inside an aggregate such as count(permit)",
        ),
        "$select=kind&$group=kind&$order=fee": (
            "query.soql.not-grouped",
            "invalid $order: column `fee` is neither grouped nor aggregated",
        ),
        "$where=count(*) > 1": (
            "query.compiler.malformed",
            "invalid $where: The aggregate count(…) is not allowed here: filter groups with "
            "$having, rows with $where",
        ),
        "$having=fee > 1": (
            "query.compiler.malformed",
            "invalid $having: needs $group or an aggregate such as count(*) in $select",
        ),
        "$select=sum(kind)": (
            "query.soql.type-mismatch",
            "invalid $select: sum needs a number argument, not text",
        ),
        "$select=count(*)&$group=nope": (
            "query.soql.no-such-column",
            "invalid $group: There is no input column named `nope`",
        ),
        "$query=SELECT permit&$where=fee > 1": (
            "query.compiler.malformed",
            "invalid $query: cannot be combined with $where; put them in it",
        ),
        "$query=" + quote("SELECT * |> SELECT count(*)"): (
            "query.compiler.malformed",
            "invalid $query: Chained queries (|>) are not supported by the local server",
        ),
        "$query=" + quote("SELECT permit WHERE fee > 1 WHERE fee < 2"): (
            "query.compiler.malformed",
            "invalid $query: The WHERE clause appears twice",
        ),
        "$query=" + quote("permit WHERE fee > 1"): (
            "query.compiler.malformed",
            "invalid $query: A $query statement starts with SELECT",
        ),
        "$select=" + quote("`#0`"): (
            "query.soql.no-such-column",
            "invalid $select: There is no column named `#0`",
        ),
    }
    for query, (key, message) in cases.items():
        await refused(api, "GET", f"/resource/{ff}.json?{query}", (400, key), message)


async def test_a_sum_beyond_the_number_range_is_a_clear_400(api: aiohttp.ClientSession) -> None:
    """``sum`` cannot be wrapped in ``try()``: its overflow is one error for the read."""
    ff, job = await publish(api, b"n\n99999999999999999999\n99999999999999999999\n")
    assert job["status"] == "successful", job["log"]
    await refused(
        api,
        "GET",
        f"/resource/{ff}.json?$select=sum(n)",
        (400, "query.soql.number-out-of-range"),
        "beyond the local server's number range (20 digits before the point, 18 after)",
    )
    # The server keeps serving, and a sum in range still answers exactly.
    assert await rows_of(api, ff, "$select=count(n) AS c") == [{"c": "2"}]
