"""SODA query parameters translated to SQL and run over a typed dataset table."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.datasets import dataset_query
from dsmsyncd.server.storage.soql import QueryError, TranslatedQuery, translate_query
from dsmsyncd.server.transforms import ColumnInput, limits

COLUMNS = {
    "name": ColumnInput('"name"', SoqlType.TEXT),
    "n": ColumnInput('"n"', SoqlType.NUMBER),
    "raw": ColumnInput('"raw"', SoqlType.TEXT),
}


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t (__sid BIGINT, __created_at TIMESTAMPTZ, __updated_at TIMESTAMPTZ, "
        '"name" VARCHAR, "n" DOUBLE, "raw" VARCHAR)'
    )
    con.execute(
        "INSERT INTO t VALUES (1, NULL, NULL, 'a', 1, '1'), (2, NULL, NULL, 'b', 2, 'x'), "
        "(3, NULL, NULL, 'c', 3, '3'), (4, NULL, NULL, NULL, NULL, '4')"
    )
    return con


def run(con: duckdb.DuckDBPyConnection, q: TranslatedQuery) -> list[tuple[Any, ...]]:
    return con.execute(dataset_query("t", q, paged=True), [q.limit, q.offset]).fetchall()


def test_translate_query_star_defaults(con: duckdb.DuckDBPyConnection) -> None:
    q = translate_query({}, COLUMNS)
    assert [c.name for c in q.select] == ["name", "n", "raw"]
    assert (q.where_sql, q.order_sql, q.limit, q.offset) == (None, [], 1000, 0)
    assert len(run(con, q)) == 4


def test_translate_query_select_expressions_and_aliases(con: duckdb.DuckDBPyConnection) -> None:
    q = translate_query({"$select": "name, n * 2 AS twice, upper(name)", "$limit": "2"}, COLUMNS)
    assert [(c.name, c.soql_type) for c in q.select] == [
        ("name", SoqlType.TEXT),
        ("twice", SoqlType.NUMBER),
        ("upper_name", SoqlType.TEXT),
    ]
    assert run(con, q) == [("a", 2.0, "A"), ("b", 4.0, "B")]


def test_translate_query_where_order_offset(con: duckdb.DuckDBPyConnection) -> None:
    params = {
        "$select": "name",
        "$where": "n >= 2 or name is null",
        "$order": "n DESC",
        "$offset": "1",
    }
    assert run(con, translate_query(params, COLUMNS)) == [("c",), ("b",)]


def test_translate_query_where_rows_in_error_are_excluded(con: duckdb.DuckDBPyConnection) -> None:
    q = translate_query({"$select": "name", "$where": "to_number(raw) > 0"}, COLUMNS)
    assert run(con, q) == [("a",), ("c",), (None,)]


def test_translate_query_simple_equality_filter(con: duckdb.DuckDBPyConnection) -> None:
    assert run(con, translate_query({"$select": "n", "name": "b"}, COLUMNS)) == [(2.0,)]


def test_translate_query_injection_attempt_stays_a_literal(con: duckdb.DuckDBPyConnection) -> None:
    evil = "name = 'x'' OR 1=1; DROP TABLE t; --'"
    assert run(con, translate_query({"$where": evil}, COLUMNS)) == []
    assert run(con, translate_query({"name": "' OR ''='"}, COLUMNS)) == []
    with pytest.raises(QueryError):
        translate_query({"$select": 'name AS "x; DROP TABLE t"'}, COLUMNS)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(4,)]


def test_translate_query_unknown_parameter() -> None:
    with pytest.raises(QueryError) as info:
        translate_query({"$groupby": "name"}, COLUMNS)
    assert info.value.parameter == "$groupby"


def test_translate_query_unknown_column_names_parameter() -> None:
    with pytest.raises(QueryError) as info:
        translate_query({"$order": "nope"}, COLUMNS)
    assert info.value.parameter == "$order"


def test_translate_query_where_must_be_boolean() -> None:
    with pytest.raises(QueryError) as info:
        translate_query({"$where": "n + 1"}, COLUMNS)
    assert info.value.parameter == "$where"


def test_translate_query_limit_bounds() -> None:
    with pytest.raises(QueryError):
        translate_query({"$limit": "50001"}, COLUMNS)
    with pytest.raises(QueryError):
        translate_query({"$offset": "-1"}, COLUMNS)


def test_translate_query_count_all_is_one_row(con: duckdb.DuckDBPyConnection) -> None:
    q = translate_query({"$select": "count(*)", "$where": "n >= 2", "$limit": "5"}, COLUMNS)
    assert q.aggregate
    assert [(c.name, c.soql_type) for c in q.select] == [("count", SoqlType.NUMBER)]
    assert q.order_sql == []
    assert run(con, q) == [(2,)]


def test_translate_query_count_all_alias(con: duckdb.DuckDBPyConnection) -> None:
    q = translate_query({"$select": "COUNT( * ) AS total"}, COLUMNS)
    assert [c.name for c in q.select] == ["total"]
    assert run(con, q) == [(4,)]


def test_translate_query_search_and_statement_are_held_to_the_length_limit() -> None:
    long_text = "x" * (limits.MAX_EXPRESSION_CHARS + 1)
    for params, parameter in (
        ({"$q": long_text}, "$q"),
        ({"$query": "SELECT name WHERE name = '" + long_text + "'"}, "$query"),
    ):
        with pytest.raises(QueryError) as info:
            translate_query(params, COLUMNS)
        assert (info.value.parameter, info.value.key) == (parameter, "expression_too_long")
        assert info.value.limit == limits.MAX_EXPRESSION_CHARS


def test_translate_query_group_having_search_and_statement(
    con: duckdb.DuckDBPyConnection,
) -> None:
    q = translate_query(
        {"$query": "SELECT name, count(*) AS c GROUP BY name HAVING c >= 1 ORDER BY name"},
        COLUMNS,
    )
    assert q.aggregate
    assert run(con, q) == [("a", 1.0), ("b", 1.0), ("c", 1.0), (None, 1.0)]
    q = translate_query({"$select": "name", "$q": "B"}, COLUMNS)
    assert run(con, q) == [("b",)]


def test_translate_query_order_by_id_is_row_order_also_when_grouped(
    con: duckdb.DuckDBPyConnection,
) -> None:
    q = translate_query({"$select": "name", "$order": ":id DESC", "$limit": "2"}, COLUMNS)
    assert q.order_sql == ["__sid DESC NULLS FIRST"]  # the row id itself: no text sort
    assert run(con, q) == [(None,), ("c",)]
    q = translate_query({"$select": ":id", "$group": ":id", "$order": ":id DESC"}, COLUMNS)
    assert run(con, q)[:2] == [("row-000000000004",), ("row-000000000003",)]
