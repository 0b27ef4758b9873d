"""Reading published datasets: SODA row reads, CSV exports, and snapshots for drafts.

A dataset table has one column per dataset column, named by its field name, plus
``__sid``, the stable internal row id that breaks ties so that paging is stable
(``apply.py`` writes these tables). A dataset that was never applied has no table and
reads as empty.

These functions block; :class:`~dsmsyncd.server.storage.rowstore.RowStore` runs them in a
worker thread with a cursor of their own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb

from dsmsyncd.server.soql_types import SoqlType, duckdb_type, to_csv_text, to_wire
from dsmsyncd.server.storage.sql import count, ident, table_exists
from dsmsyncd.server.storage.sql import table as qtable

SelectItem = tuple[str, str, SoqlType]  # (SQL expression, result key, SoQL type)


def dataset_query(
    dataset_table: str,
    select: Sequence[SelectItem],
    where_sql: str | None,
    order_sql: Sequence[str],
    *,
    paged: bool,
) -> str:
    """The SELECT for a dataset read; ``__sid`` breaks ties so paging is stable."""
    items = ", ".join(f"({expr}) AS {ident(f'_{i}')}" for i, (expr, _, _) in enumerate(select))
    where = f"WHERE {where_sql}" if where_sql else ""
    order = ", ".join([*order_sql, "__sid"])
    limit = "LIMIT ? OFFSET ?" if paged else ""
    return f"SELECT {items} FROM {qtable(dataset_table)} {where} ORDER BY {order} {limit}"


def dataset_rows(
    cur: duckdb.DuckDBPyConnection,
    dataset_table: str,
    select: Sequence[SelectItem],
    where_sql: str | None,
    order_sql: Sequence[str],
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    if not table_exists(cur, dataset_table):
        return []
    sql = dataset_query(dataset_table, select, where_sql, order_sql, paged=True)
    rows = cur.execute(sql, [limit, offset]).fetchall()
    return [
        {key: to_wire(kind, value) for (_, key, kind), value in zip(select, row, strict=True)}
        for row in rows
    ]


def dataset_csv(rows: Iterable[tuple[Any, ...]], select: Sequence[SelectItem]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([to_csv_text(kind, v) for (_, _, kind), v in zip(select, row, strict=True)])
    return buffer.getvalue().encode()


def dataset_count(cur: duckdb.DuckDBPyConnection, dataset_table: str) -> int:
    if not table_exists(cur, dataset_table):
        return 0
    return count(cur, qtable(dataset_table))


def snapshot(
    cur: duckdb.DuckDBPyConnection,
    dataset_table: str,
    input_table: str,
    columns: Sequence[tuple[str, SoqlType]],
) -> int:
    """Copy a dataset's rows into an input table (``__offset`` + the columns); the count.

    An unpublished dataset gives an empty table; a column the dataset lacks reads as
    NULL. A view source's draft reads this copy, so later applies do not move it.
    """
    out = qtable(input_table)
    if not table_exists(cur, dataset_table):
        defs = "".join(f", {ident(f)} {duckdb_type(t)}" for f, t in columns)
        cur.execute(f"CREATE OR REPLACE TABLE {out} (__offset BIGINT{defs})")
        return 0
    present = {
        str(r[0])
        for r in cur.execute(
            "SELECT column_name FROM duckdb_columns() "
            "WHERE table_name = ? AND schema_name = 'main'",
            [dataset_table],
        ).fetchall()
    }
    cells = "".join(
        f", {ident(f)}" if f in present else f", CAST(NULL AS {duckdb_type(t)}) AS {ident(f)}"
        for f, t in columns
    )
    cur.execute(
        f"CREATE OR REPLACE TABLE {out} AS SELECT (row_number() OVER (ORDER BY __sid)) - 1 "
        f"AS __offset{cells} FROM {qtable(dataset_table)}"
    )
    return count(cur, out)
