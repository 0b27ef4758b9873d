"""Reading published datasets: SODA row reads, CSV exports, and snapshots for drafts.

A dataset table has one column per dataset column, named by its field name, plus the
system columns (``system_columns.py``; ``apply.py`` writes these tables). A dataset
that was never applied has no table and reads as empty. Rows are shaped for the wire
by ``soda_format.py``.

These functions block; :class:`~dsmsyncd.server.storage.rowstore.RowStore` runs them in a
worker thread with a cursor of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import duckdb

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.storage.soql import TranslatedQuery
from dsmsyncd.server.storage.sql import column_types, count, ident, table_exists
from dsmsyncd.server.storage.sql import table as qtable
from dsmsyncd.server.storage.system_columns import CREATED, SID, UPDATED

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetRef:
    """A dataset's table and its columns (field name, SoQL type), as the view lists them.

    The columns let a dataset that was never applied (no table yet) read as an empty
    table of the right shape, so ``count(*)`` answers 0 and a grouped read no group.
    """

    table: str
    columns: Sequence[tuple[str, SoqlType]]


def source_sql(cur: duckdb.DuckDBPyConnection, ref: DatasetRef) -> str:
    """The relation a read selects from: the table, or an empty one of its shape."""
    if table_exists(cur, ref.table):
        return qtable(ref.table)
    system = f"CAST(NULL AS BIGINT) AS {SID}, CAST(NULL AS TIMESTAMPTZ) AS {CREATED}, "
    system += f"CAST(NULL AS TIMESTAMPTZ) AS {UPDATED}"
    cells = "".join(f", CAST(NULL AS {duckdb_type(t)}) AS {ident(f)}" for f, t in ref.columns)
    return f"(SELECT {system}{cells} WHERE FALSE)"


def dataset_query(source: str, query: TranslatedQuery, *, paged: bool) -> str:
    """The SELECT of a read. ``__sid`` breaks ties so paging is stable; a grouped read
    is ordered, after ``$order``, by its selected columns."""
    items = ", ".join(f"({c.sql}) AS {ident(f'_{i}')}" for i, c in enumerate(query.select))
    where = f"WHERE {query.where_sql}" if query.where_sql else ""
    group = f"GROUP BY {', '.join(query.group_sql)}" if query.group_sql else ""
    having = f"HAVING {query.having_sql}" if query.having_sql else ""
    ties = [str(i + 1) for i in range(len(query.select))] if query.aggregate else [SID]
    order = ", ".join([*query.order_sql, *ties])
    limit = "LIMIT ? OFFSET ?" if paged else ""
    return f"SELECT {items} FROM {source} {where} {group} {having} ORDER BY {order} {limit}"


def dataset_rows(
    cur: duckdb.DuckDBPyConnection,
    ref: DatasetRef,
    query: TranslatedQuery,
    shape: Callable[[list[tuple[Any, ...]]], T],
) -> T:
    """One page of a read, shaped by ``shape`` (JSON rows, GeoJSON) in this thread.

    A read that selects nothing (``*`` of a dataset with no column yet) has no row.
    """
    if not query.select:
        return shape([])
    sql = dataset_query(source_sql(cur, ref), query, paged=True)
    return shape(cur.execute(sql, [query.limit, query.offset]).fetchall())


def dataset_version(cur: duckdb.DuckDBPyConnection, ref: DatasetRef) -> str:
    """What changes whenever an apply changes the rows: their count and last update."""
    if not table_exists(cur, ref.table):
        return "empty"
    row = cur.execute(f"SELECT count(*), max({UPDATED}) FROM {qtable(ref.table)}").fetchone()
    assert row is not None
    return f"{row[0]}:{row[1].isoformat() if row[1] is not None else ''}"


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
    present = set(column_types(cur, dataset_table))
    cells = "".join(
        f", {ident(f)}" if f in present else f", CAST(NULL AS {duckdb_type(t)}) AS {ident(f)}"
        for f, t in columns
    )
    cur.execute(
        f"CREATE OR REPLACE TABLE {out} AS SELECT (row_number() OVER (ORDER BY __sid)) - 1 "
        f"AS __offset{cells} FROM {qtable(dataset_table)}"
    )
    return count(cur, out)
