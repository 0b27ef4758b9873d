"""Expression limits over HTTP: each is a 400 whose key and message name the limit.

Issue 11: one anonymous request nesting ``(to_number(X)+1)::text`` eight times took
the server down. Every path that compiles an expression (``$select``, ``$where``,
``$order``, a schema transform, an import config) answers a limit with a 400 whose
data carry its value, and the depth-8 request itself gets the right answer. The limits
themselves are tested in ``tests/server/unit/test_query_limits.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.transforms import limits
from tests.server.http.flows import (
    assert_refused,
    call,
    output_column,
    parsed_source,
    publish,
    refused,
    transform,
)
from tests.support.local_server import API

CSV = b"id,name\n1,1\n2,x\n3,-3.75\n"


def nested(depth: int, column: str = "name") -> str:
    """The issue's expression: ``(to_number(X)+1)::text`` nested ``depth`` times."""
    expr = column
    for _ in range(depth):
        expr = f"(to_number({expr})+1)::text"
    return expr


async def test_depth_8_request_gets_the_right_answer(api: aiohttp.ClientSession) -> None:
    """The issue's 172-character request: no answer in 300 s before, 10 GB of RSS."""
    ff, _ = await publish(api, CSV)
    expr = nested(8)
    assert len(expr) == 172
    params = {"$select": f"{expr} AS n", "$order": "id"}
    async with asyncio.timeout(30), api.get(f"/resource/{ff}.json", params=params) as resp:
        rows = await resp.json()  # the timeout is a guard: it answers in milliseconds
        assert resp.status == 200, rows
    assert rows == [{"n": "9"}, {}, {"n": "4.25"}]  # 'x' is not a number: null, left out


@pytest.mark.parametrize("parameter", ["$select", "$where", "$order"])
async def test_soda_parameter_over_the_depth_limit_is_a_400_naming_it(
    anon_api: aiohttp.ClientSession, api: aiohttp.ClientSession, parameter: str
) -> None:
    ff, job = await publish(api, CSV, public=True)
    assert job["status"] == "successful", job
    deep = nested(limits.MAX_EXPRESSION_DEPTH // 3 + 1)
    value = f"{deep} = '1'" if parameter == "$where" else deep
    async with anon_api.get(f"/resource/{ff}.json", params={parameter: value}) as resp:
        body = await resp.json()
        assert resp.status == 400, body
    assert body["key"] == "expression_too_deep"
    assert body["data"] == {"parameter": parameter, "limit": limits.MAX_EXPRESSION_DEPTH}
    assert body["message"].startswith(f"invalid {parameter}: The expression is nested more than")


async def test_soda_parentheses_bomb_is_a_400(api: aiohttp.ClientSession) -> None:
    """5,000 nested parentheses raised RecursionError in the parser: a 500."""
    ff, _ = await publish(api, CSV)
    where = "(" * 3_000 + "name = '1'" + ")" * 3_000
    async with api.get(f"/resource/{ff}.json", params={"$where": where}) as resp:
        body = await resp.json()
        assert resp.status == 400, body
    assert_refused(body, "expression_too_deep", "invalid $where: The expression is nested more")


async def test_schema_transform_over_a_limit_is_a_400_naming_it(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    deep = "(" * 200 + "`id`" + ")" * 200
    resp = await transform(api, source, [output_column("deep", deep, 0)])
    assert resp.status == 400
    body: dict[str, Any] = await resp.json()
    assert_refused(body, "expression_too_deep", "transform of column 'deep' does not compile")
    assert body["data"]["limit"] == limits.MAX_EXPRESSION_DEPTH
    assert body["data"]["field_name"] == "deep"


async def test_import_config_transform_over_a_limit_is_a_400_at_creation(
    api: aiohttp.ClientSession,
) -> None:
    items = ",".join(["'x'"] * (limits.MAX_EXPRESSION_NODES + 1))
    body = {"name": "big", "columns": [{"field_name": "c", "transform_expr": f"`c` in ({items})"}]}
    reply = await refused(
        api,
        "POST",
        f"{API}/config",
        (400, "expression_too_large"),
        f"more than {limits.MAX_EXPRESSION_NODES} values, names and operations",
        body=body,
    )
    assert reply["data"] == {
        "field": "columns[0].transform_expr",
        "limit": limits.MAX_EXPRESSION_NODES,
    }
    # A syntax error is still only reported once a file's columns are known.
    body = {"name": "later", "columns": [{"field_name": "c", "transform_expr": "`c` ||"}]}
    status, reply = await call(api, "POST", f"{API}/config", body)
    assert status == 201, reply


async def test_output_schema_over_the_total_sql_limit_is_a_400(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await parsed_source(server, api)
    item = "`id`"
    for _ in range(45):
        item = f"to_text(to_multipoint({item}))"
    resp = await transform(api, source, [output_column(f"c{i}", item, i) for i in range(10)])
    assert resp.status == 400
    body: dict[str, Any] = await resp.json()
    assert body["key"] == "statement_sql_too_large"
    assert body["data"]["limit"] == limits.MAX_STATEMENT_SQL_CHARS
    assert "The output schema's transforms compile to more than" in body["message"]
