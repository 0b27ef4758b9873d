"""Expression limits (depth, size, text, SQL) and what they answer, for SODA and transforms.

Issue 11: one anonymous request nesting ``(to_number(X)+1)::text`` eight times took
the server down. The compiler now keeps SQL linear (``test_transforms_linear.py``);
these tests cover the hard limits of ``transforms/limits.py``: each is a 400 whose key
and message name the limit and whose data carry its value, on every path that compiles
an expression (``$select``, ``$where``, ``$order``, a schema transform, an import
config), and the depth-8 request itself gets the right answer over HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.soql import QueryError, translate_query
from dsmsyncd.server.transforms import ColumnInput, compile_expression, limits
from dsmsyncd.server.transforms.limits import ExpressionLimitError
from tests.server.test_http_sources_schemas import _column, _parsed, _transform
from tests.server.test_http_views import API, call, poll, publish, upload

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT)}
CSV = b"id,name\n1,1\n2,x\n3,-3.75\n"


def nested(depth: int, column: str = "name") -> str:
    """The issue's expression: ``(to_number(X)+1)::text`` nested ``depth`` times."""
    expr = column
    for _ in range(depth):
        expr = f"(to_number({expr})+1)::text"
    return expr


def limit_error(expr: str) -> ExpressionLimitError:
    with pytest.raises(ExpressionLimitError) as info:
        compile_expression(expr, COLUMNS)
    return info.value


def test_parentheses_deeper_than_the_limit_are_refused_not_a_recursion_error() -> None:
    error = limit_error("(" * 5_000 + "a" + ")" * 5_000)
    assert (error.key, error.limit) == ("expression_too_deep", limits.MAX_EXPRESSION_DEPTH)
    assert f"more than {limits.MAX_EXPRESSION_DEPTH} levels deep" in error.message


def test_a_long_operator_chain_is_a_deep_tree_and_is_refused() -> None:
    error = limit_error(" || ".join(["a"] * (limits.MAX_EXPRESSION_DEPTH + 2)))
    assert (error.key, error.limit) == ("expression_too_deep", limits.MAX_EXPRESSION_DEPTH)
    ok = " || ".join(["a"] * limits.MAX_EXPRESSION_DEPTH)
    assert compile_expression(ok, COLUMNS).output_type is SoqlType.TEXT


def test_too_many_nodes_is_refused() -> None:
    items = ",".join(["'x'"] * limits.MAX_EXPRESSION_NODES)
    error = limit_error(f"a in ({items})")
    assert (error.key, error.limit) == ("expression_too_large", limits.MAX_EXPRESSION_NODES)
    assert str(limits.MAX_EXPRESSION_NODES) in error.message


def test_too_long_text_is_refused_before_parsing() -> None:
    error = limit_error("'" + "x" * limits.MAX_EXPRESSION_CHARS + "'")
    assert (error.key, error.limit) == ("expression_too_long", limits.MAX_EXPRESSION_CHARS)
    assert f"the limit is {limits.MAX_EXPRESSION_CHARS} characters" in error.message


def test_sql_over_the_limit_is_refused() -> None:
    # Each `coalesce` argument is a few KB of SQL; 200 of them are over the SQL limit.
    item = "to_text(to_number(to_text(to_number(a) * 2)) * 2)"
    error = limit_error(f"coalesce({', '.join([item] * 200)})")
    assert (error.key, error.limit) == ("expression_sql_too_large", limits.MAX_SQL_CHARS)
    assert f"more than {limits.MAX_SQL_CHARS} characters of SQL" in error.message


async def test_depth_8_request_gets_the_right_answer(api: aiohttp.ClientSession) -> None:
    """The issue's 172-character request: no answer in 300 s before, 10 GB of RSS."""
    ff, _ = await publish(api, CSV)
    expr = nested(8)
    assert len(expr) == 172
    params = {"$select": f"{expr} AS n", "$order": "id"}
    async with asyncio.timeout(30), api.get(f"/resource/{ff}.json", params=params) as resp:
        rows = await resp.json()  # the timeout is a guard: it answers in milliseconds
        assert resp.status == 200, rows
    assert rows == [{"n": "9"}, {"n": None}, {"n": "4.25"}]  # 'x' is not a number


@pytest.mark.parametrize("parameter", ["$select", "$where", "$order"])
async def test_soda_parameter_over_the_depth_limit_is_a_400_naming_it(
    anon_api: aiohttp.ClientSession, api: aiohttp.ClientSession, parameter: str
) -> None:
    ff = await publish_public(api, CSV)
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
    assert body["key"] == "expression_too_deep"


async def test_schema_transform_over_a_limit_is_a_400_naming_it(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await _parsed(server, api)
    deep = "(" * 200 + "`id`" + ")" * 200
    resp = await _transform(api, source, [_column("deep", deep, 0)])
    assert resp.status == 400
    body: dict[str, Any] = await resp.json()
    assert body["key"] == "expression_too_deep"
    assert body["data"]["limit"] == limits.MAX_EXPRESSION_DEPTH
    assert body["data"]["field_name"] == "deep"
    assert "transform of column 'deep' does not compile" in body["message"]


async def test_import_config_transform_over_a_limit_is_a_400_at_creation(
    api: aiohttp.ClientSession,
) -> None:
    items = ",".join(["'x'"] * (limits.MAX_EXPRESSION_NODES + 1))
    body = {"name": "big", "columns": [{"field_name": "c", "transform_expr": f"`c` in ({items})"}]}
    status, reply = await call(api, "POST", f"{API}/config", body)
    assert status == 400, reply
    assert reply["key"] == "expression_too_large"
    assert reply["data"] == {
        "field": "columns[0].transform_expr",
        "limit": limits.MAX_EXPRESSION_NODES,
    }
    # A syntax error is still only reported once a file's columns are known.
    body = {"name": "later", "columns": [{"field_name": "c", "transform_expr": "`c` ||"}]}
    status, reply = await call(api, "POST", f"{API}/config", body)
    assert status == 201, reply


async def publish_public(api: aiohttp.ClientSession, data: bytes) -> str:
    """A public dataset holding ``data``, so that anonymous clients can read it."""
    body = {"action": {"type": "update", "permission": "public"}, "metadata": {"name": "P"}}
    status, env = await call(api, "POST", f"{API}/revision", body)
    assert status == 201, env
    osid = await upload(api, env["links"], data)
    status, job_env = await call(api, "PUT", env["links"]["apply"], {"output_schema_id": osid})
    assert status == 200, job_env
    job = await poll(api, job_env["links"]["show"], "finished_at")
    assert job["status"] == "successful", job
    fourfour: str = env["resource"]["fourfour"]
    return fourfour


def test_statement_over_the_total_sql_limit_names_its_largest_parameter() -> None:
    """Each item is under the per-expression limit; together they are over the total."""
    item = "a"
    for _ in range(45):
        item = f"to_text(to_multipoint({item}))"
    assert len(compile_expression(item, COLUMNS).value_sql) < limits.MAX_SQL_CHARS
    select = ", ".join(f"{item} AS c{i}" for i in range(10))
    order = ", ".join([item] * 9)
    with pytest.raises(QueryError) as info:
        translate_query({"$select": select, "$order": order}, COLUMNS)
    error = info.value
    assert (error.parameter, error.key) == ("$select", "statement_sql_too_large")
    assert error.limit == limits.MAX_STATEMENT_SQL_CHARS
    assert f"more than {limits.MAX_STATEMENT_SQL_CHARS} characters of SQL" in error.message


async def test_output_schema_over_the_total_sql_limit_is_a_400(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _rev, source = await _parsed(server, api)
    item = "`id`"
    for _ in range(45):
        item = f"to_text(to_multipoint({item}))"
    resp = await _transform(api, source, [_column(f"c{i}", item, i) for i in range(10)])
    assert resp.status == 400
    body: dict[str, Any] = await resp.json()
    assert body["key"] == "statement_sql_too_large"
    assert body["data"]["limit"] == limits.MAX_STATEMENT_SQL_CHARS
    assert "The output schema's transforms compile to more than" in body["message"]
