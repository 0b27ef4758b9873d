"""SoQL and transform expressions reach the dataset's own columns and nothing else.

A query is parsed by the transform language's own parser: identifiers resolve only to
the dataset's columns (and its system fields), calls only to the registered SoQL and
transform functions, literals are always bound as data. So none of DuckDB's table
functions (``read_csv``, ``glob``), system tables (``duckdb_tables()``,
``information_schema``), settings (``current_setting``, ``SET``, ``PRAGMA``), statements
(``ATTACH``, ``COPY``) or ``getenv``/``query()`` can be reached, whatever the quoting,
comments or semicolons; nor another dataset's table. Each case asserts the exact
refusal: status, key and whole message.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    output_column,
    parsed_source,
    publish,
    transform,
)

MALFORMED = "query.compiler.malformed"
NO_COLUMN = "query.soql.no-such-column"
KNOWN = "(known columns: `n`, `label`, `:id`, `:created_at`, `:updated_at`)"

# (parameter, expression, key, message)
REFUSED_READS: list[tuple[str, str, str, str]] = [
    (
        "$select",
        "read_csv('/etc/passwd')",
        MALFORMED,
        "Unknown function read_csv (line 1, column 1)",
    ),
    (
        "$select",
        "read_parquet('x.parquet')",
        MALFORMED,
        "Unknown function read_parquet; did you mean email_parse? (line 1, column 1)",
    ),
    ("$where", "glob('/*') = 'x'", MALFORMED, "Unknown function glob (line 1, column 1)"),
    ("$select", "duckdb_tables()", MALFORMED, "Unknown function duckdb_tables (line 1, column 1)"),
    (
        "$select",
        "information_schema.tables",
        MALFORMED,
        "Unknown member .tables; members are address, city, description, host, latitude, "
        "longitude, name, path, point, query, scheme, state, tld, url, zip (line 1, column 19)",
    ),
    (
        "$select",
        "`information_schema`.`tables`",
        MALFORMED,
        "Expected a member name after '.' (line 1, column 22)",
    ),
    (
        "$having",
        "count(*) > current_setting('threads')",
        MALFORMED,
        "Unknown function current_setting (line 1, column 12)",
    ),
    ("$group", "getenv('HOME')", MALFORMED, "Unknown function getenv (line 1, column 1)"),
    (
        "$order",
        "query('select 1')",
        MALFORMED,
        "Unknown function query; did you mean upper? (line 1, column 1)",
    ),
    (
        "$select",
        "n, pragma_version()",
        MALFORMED,
        "Unknown function pragma_version (line 1, column 4)",
    ),
    (
        "$select",
        "label::read_csv",
        MALFORMED,
        "Unknown type 'read_csv' in a :: cast; use text, number, json, checkbox… "
        "(line 1, column 6)",
    ),
    (
        "$select",
        "SET",
        NO_COLUMN,
        f"There is no input column named `SET` {KNOWN} (line 1, column 1)",
    ),
    # Quoted identifiers are names of columns, whatever they hold.
    (
        "$select",
        '`x"; select 1; --`',
        NO_COLUMN,
        f'There is no input column named `x"; select 1; --` {KNOWN} (line 1, column 1)',
    ),
    (
        "$select",
        "`rowid`",
        NO_COLUMN,
        f"There is no input column named `rowid` {KNOWN} (line 1, column 1)",
    ),
    (
        "$select",
        "`n``x`",
        MALFORMED,
        "Unexpected 'x': the expression should end here (a missing operator or comma?) "
        "(line 1, column 4)",
    ),
    # Comments and statement separators are not part of the language.
    (
        "$select",
        "`n` -- comment",
        NO_COLUMN,
        f"There is no input column named `comment` {KNOWN} (line 1, column 8)",
    ),
    ("$select", "n /* c */", MALFORMED, "Expected a value, found '*' (line 1, column 4)"),
    (
        "$where",
        "1=1; ATTACH 'x.db'",
        MALFORMED,
        "Unexpected character ';': it is not part of the transform language (line 1, column 4)",
    ),
    (
        "$where",
        "1=1; COPY t TO '/tmp/x'",
        MALFORMED,
        "Unexpected character ';': it is not part of the transform language (line 1, column 4)",
    ),
    (
        "$where",
        "n in (select 1)",
        MALFORMED,
        "Expected ')' to close the IN list, found '1' (line 1, column 14)",
    ),
    # A backslash does not escape a quote: the literal ends at the first lone '.
    (
        "$where",
        "label = 'a\\' OR 1=1 --'",
        MALFORMED,
        "Unterminated text literal: add the closing ' (line 1, column 23)",
    ),
    (
        "$query",
        "SELECT n; SET threads=1",
        MALFORMED,
        "Unexpected character ';': it is not part of the transform language (line 1, column 9)",
    ),
    (
        "$query",
        "PRAGMA version",
        MALFORMED,
        "A $query statement starts with SELECT (or WHERE, ORDER BY…) (line 1, column 1)",
    ),
    (
        "$query",
        "SELECT n WHERE n > 1 UNION SELECT 1",
        MALFORMED,
        "The SELECT clause appears twice (line 1, column 28)",
    ),
]

# $query's SELECT clause is read as a $select, so its refusal names $select.
REFUSED_QUERY_FROM: list[tuple[str, str]] = [
    ("SELECT * FROM read_csv('/etc/passwd')", "Unexpected 'FROM'"),
    ("SELECT n FROM OTHER", "Unexpected 'FROM'"),
]


async def _read(api: aiohttp.ClientSession, fourfour: str, params: dict[str, str]) -> Any:
    async with api.get(f"/resource/{fourfour}.json", params=params) as resp:
        return resp.status, await resp.json()


async def test_soql_reaches_no_duckdb_function_table_setting_or_statement(
    api: aiohttp.ClientSession,
) -> None:
    fourfour, _ = await publish(api, b"n,label\n1,a\n2,b\n")
    wrong = []
    for parameter, expression, key, message in REFUSED_READS:
        status, body = await _read(api, fourfour, {parameter: expression})
        expected = (400, key, f"invalid {parameter}: {message}")
        if (status, body.get("key"), body.get("message")) != expected:
            wrong.append((parameter, expression, status, body))
    for expression, said in REFUSED_QUERY_FROM:
        status, body = await _read(api, fourfour, {"$query": expression})
        expected = (
            400,
            MALFORMED,
            f"invalid $select: {said}: the expression should end here (a missing operator "
            "or comma?) (line 1, column 3)",
        )
        if (status, body.get("key"), body.get("message")) != expected:
            wrong.append(("$query", expression, status, body))
    assert wrong == []


async def test_string_literals_with_quotes_and_backslashes_stay_data(
    api: aiohttp.ClientSession,
) -> None:
    fourfour, _ = await publish(api, b"n,label\n1,a\n2,b\n")
    # A doubled quote is one quote; the "comment" after it is text, and matches nothing.
    assert await _read(api, fourfour, {"$where": "label = 'a'' OR 1=1 --'"}) == (200, [])
    literal = "'x''); select getenv(''HOME''); --\\'"
    status, rows = await _read(api, fourfour, {"$select": f"{literal} AS t", "$limit": "1"})
    assert (status, rows) == (200, [{"t": "x'); select getenv('HOME'); --\\"}])
    # $q is a text search: its quotes and semicolons are the text searched for.
    assert await _read(api, fourfour, {"$q": "'; select 1; --"}) == (200, [])


async def test_no_query_reaches_another_users_dataset(
    api: aiohttp.ClientSession, bob_api: aiohttp.ClientSession
) -> None:
    alices, _ = await publish(api, b"n,label\n1,a\n")
    bobs, _ = await publish(bob_api, b"n,label\n1,a\n")
    for params in ({}, {"$select": "count(*)"}, {"$query": "SELECT n WHERE n = 1"}):
        status, body = await _read(bob_api, alices, params)
        assert (status, body["key"]) == (403, "permission_denied"), body
        assert body["message"] == f"dataset {alices} is private to its owner"
    # Her table's name is no name in his query: only his own columns resolve.
    table = "ds_" + alices.replace("-", "_")
    status, body = await _read(bob_api, bobs, {"$select": f"`{table}`"})
    assert (status, body["key"]) == (400, NO_COLUMN), body
    assert body["message"] == (
        f"invalid $select: There is no input column named `{table}` {KNOWN} (line 1, column 1)"
    )


# (expression, message after "transform of column 'c' does not compile: ")
REFUSED_TRANSFORMS: list[tuple[str, str]] = [
    ("read_csv('/etc/passwd')", "Unknown function read_csv (line 1, column 1)"),
    ("getenv('HOME')", "Unknown function getenv (line 1, column 1)"),
    ("`n` || current_setting('threads')", "Unknown function current_setting (line 1, column 8)"),
    ("duckdb_settings()", "Unknown function duckdb_settings (line 1, column 1)"),
    ("query('select 1')", "Unknown function query; did you mean upper? (line 1, column 1)"),
    (
        '`x"; select 1; --`',
        'There is no input column named `x"; select 1; --` (known columns: `n`, `label`) '
        "(line 1, column 1)",
    ),
    (
        "`n`; DROP TABLE x",
        "Unexpected character ';': it is not part of the transform language (line 1, column 4)",
    ),
    ("`n` /* c */", "Expected a value, found '*' (line 1, column 6)"),
    (
        "`n` -- c",
        "There is no input column named `c` (known columns: `n`, `label`) (line 1, column 8)",
    ),
]


async def test_transforms_reach_no_duckdb_function_or_statement(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _revision, source = await parsed_source(server, api, b"n,label\n1,a\n")
    wrong = []
    for expression, message in REFUSED_TRANSFORMS:
        resp = await transform(api, source, [output_column("c", expression, 0)])
        body = await resp.json()
        expected = (
            400,
            "transform_compilation_error",
            f"transform of column 'c' does not compile: {message}",
        )
        if (resp.status, body.get("key"), body.get("message")) != expected:
            wrong.append((expression, resp.status, body))
    assert wrong == []
    # Quotes in a text literal stay text: one text literal, no call.
    resp = await transform(api, source, [output_column("c", "'a'' || getenv(''x'')'", 0)])
    assert resp.status == 201, await resp.text()
    created = (await resp.json())["resource"]["output_columns"][0]["transform"]
    assert (created["output_soql_type"], created["transform_input_columns"]) == ("text", [])
