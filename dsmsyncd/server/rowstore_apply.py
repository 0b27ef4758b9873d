"""Published datasets: applying an output table to a dataset table, and reading it.

A dataset table has one column per dataset column, named by its field name, plus
``__sid``: a stable internal row id (SODA ``:id`` and the default order). An apply
runs in one DuckDB transaction: schema change first (DuckDB refuses DDL on a table
the same transaction has already written), then the row changes, so a reader sees the
old rows or the new ones, never half.

These functions block; :class:`~dsmsyncd.server.rowstore.RowStore` runs them in a
worker thread with a cursor of their own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from dsmsyncd.server.rowstore_output import any_error, error_column_count
from dsmsyncd.server.rowstore_sql import ident
from dsmsyncd.server.rowstore_sql import table as qtable
from dsmsyncd.server.soql_types import SoqlType, duckdb_type, to_csv_text, to_wire

ApplyAction = Literal["update", "replace", "delete"]
SelectItem = tuple[str, str, SoqlType]  # (SQL expression, result key, SoQL type)

_INCOMING = "__apply_incoming"
# duckdb_columns() spells some types differently from CREATE TABLE.
_TYPE_ALIASES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


class ApplyRefused(Exception):
    """The apply cannot be carried out as asked; the message says why and what to do."""


@dataclass(frozen=True)
class AppliedColumn:
    field_name: str
    soql_type: SoqlType
    source_index: int  # reads v{source_index} of the output table


@dataclass(frozen=True)
class ApplyStats:
    created: int
    updated: int
    deleted: int
    errors: int  # rows left out: an error cell, or no row-identifier value
    total_rows_after: int


def apply(
    cur: duckdb.DuckDBPyConnection,
    dataset_table: str,
    output_table: str,
    columns: Sequence[AppliedColumn],
    action: ApplyAction,
    row_identifier: str | None,
) -> ApplyStats:
    if action not in ("update", "replace", "delete"):
        raise ApplyRefused(f"unknown action {action!r}: use update, replace or delete")
    if action == "delete" and row_identifier is None:
        raise ApplyRefused(
            "delete needs a row identifier: mark one output column as the row identifier "
            "(is_primary_key) so the rows to delete can be matched"
        )
    names = [c.field_name for c in columns]
    if len(set(names)) != len(names) or "__sid" in names:
        raise ApplyRefused(f"column field names must be unique and not __sid, got {names}")
    if row_identifier is not None and row_identifier not in names:
        raise ApplyRefused(f"row identifier {row_identifier!r} is not among the columns {names}")
    ds = qtable(dataset_table)
    clean = f"NOT {any_error(error_column_count(cur, output_table))}"
    cur.execute("BEGIN TRANSACTION")
    try:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {ds} (__sid BIGINT)")
        if action != "delete":
            _reshape(cur, dataset_table, columns)
        values = "".join(f", v{c.source_index} AS {ident(c.field_name)}" for c in columns)
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_INCOMING} AS SELECT __offset{values} "
            f"FROM {qtable(output_table)} WHERE {clean}"
        )
        total = _count(cur, qtable(output_table))
        errors = total - _count(cur, _INCOMING)
        if row_identifier is not None:
            errors += _keep_last_per_identifier(cur, row_identifier)
        created = updated = deleted = 0
        if action == "delete":
            assert row_identifier is not None
            rid = ident(row_identifier)
            deleted = _changed(
                cur, f"DELETE FROM {ds} WHERE {rid} IN (SELECT {rid} FROM {_INCOMING})"
            )
        else:
            base = _count(cur, ds, "coalesce(max(__sid), 0)")
            if action == "replace":
                deleted = _changed(cur, f"DELETE FROM {ds}")
            elif row_identifier is not None:
                updated = _upsert_existing(cur, ds, names, row_identifier)
            created = _insert_new(cur, ds, names, row_identifier, base)
        after = _count(cur, ds)
        cur.execute(f"DROP TABLE {_INCOMING}")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return ApplyStats(created, updated, deleted, errors, after)


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
    return _count(cur, qtable(dataset_table))


def table_exists(cur: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]
    ).fetchone()
    return bool(row and row[0])


def _reshape(
    cur: duckdb.DuckDBPyConnection, dataset_table: str, columns: Sequence[AppliedColumn]
) -> None:
    """Make the dataset's columns exactly ``columns``, keeping data of surviving names."""
    ds = qtable(dataset_table)
    existing = dict(
        cur.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = ? AND database_name = current_database() "
            "AND schema_name = 'main' AND column_name <> '__sid'",
            [dataset_table],
        ).fetchall()
    )
    wanted = {c.field_name for c in columns}
    for name in existing:
        if name not in wanted:
            cur.execute(f"ALTER TABLE {ds} DROP COLUMN {ident(name)}")
    for col in columns:
        kind = duckdb_type(col.soql_type)
        name = ident(col.field_name)
        if col.field_name not in existing:
            cur.execute(f"ALTER TABLE {ds} ADD COLUMN {name} {kind}")
        elif existing[col.field_name] != _TYPE_ALIASES.get(kind, kind):
            using = _cast(name, existing[col.field_name], kind)
            cur.execute(f"ALTER TABLE {ds} ALTER COLUMN {name} SET DATA TYPE {kind} USING {using}")


def _cast(name: str, old: str, new: str) -> str:
    """Convert stored values on a type change; to text they read as on the wire."""
    if new == "VARCHAR" and old == "DOUBLE":
        return (
            f"CASE WHEN {name} = trunc({name}) AND abs({name}) < 1e16 "
            f"THEN CAST(CAST({name} AS BIGINT) AS VARCHAR) ELSE CAST({name} AS VARCHAR) END"
        )
    if new == "VARCHAR" and old == "TIMESTAMP":
        return f"strftime({name}, '%Y-%m-%dT%H:%M:%S')"
    return f"TRY_CAST({name} AS {new})"


def _keep_last_per_identifier(cur: duckdb.DuckDBPyConnection, row_identifier: str) -> int:
    """Drop incoming rows without an identifier (returned) and all but the last per id."""
    rid = ident(row_identifier)
    missing = _changed(cur, f"DELETE FROM {_INCOMING} WHERE {rid} IS NULL")
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE {_INCOMING} AS SELECT * FROM {_INCOMING} "
        f"QUALIFY row_number() OVER (PARTITION BY {rid} ORDER BY __offset DESC) = 1"
    )
    return missing


def _upsert_existing(
    cur: duckdb.DuckDBPyConnection, ds: str, names: list[str], row_identifier: str
) -> int:
    rid = ident(row_identifier)
    assignments = ", ".join(f"{ident(n)} = n.{ident(n)}" for n in names if n != row_identifier)
    matched = _count(
        cur, f"{_INCOMING} n WHERE EXISTS (SELECT 1 FROM {ds} d WHERE d.{rid} = n.{rid})"
    )
    if assignments:
        cur.execute(f"UPDATE {ds} SET {assignments} FROM {_INCOMING} n WHERE {ds}.{rid} = n.{rid}")
    return matched


def _insert_new(
    cur: duckdb.DuckDBPyConnection,
    ds: str,
    names: list[str],
    row_identifier: str | None,
    base: int,
) -> int:
    cols = "".join(f", {ident(n)}" for n in names)
    new_only = ""
    if row_identifier is not None:
        rid = ident(row_identifier)
        new_only = f"WHERE NOT EXISTS (SELECT 1 FROM {ds} d WHERE d.{rid} = n.{rid})"
    return _changed(
        cur,
        f"INSERT INTO {ds} (__sid{cols}) SELECT {base} + row_number() OVER "
        f"(ORDER BY n.__offset){''.join(f', n.{ident(x)}' for x in names)} "
        f"FROM {_INCOMING} n {new_only}",
    )


def _count(cur: duckdb.DuckDBPyConnection, source: str, expr: str = "count(*)") -> int:
    row = cur.execute(f"SELECT {expr} FROM {source}").fetchone()
    return int(row[0]) if row else 0


def _changed(cur: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = cur.execute(sql).fetchone()
    return int(row[0]) if row else 0
