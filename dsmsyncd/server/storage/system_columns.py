"""The system fields every dataset row carries: ``:id``, ``:created_at``, ``:updated_at``.

A dataset table stores them as ``__sid`` (the internal row id, also the default order),
``__created_at`` and ``__updated_at`` (fixed timestamps written by the apply that made or
last changed the row; ``apply.py`` keeps them). SODA reads see them under their hosted
names (dev.socrata.com "System Fields"): selectable (also as ``:*``), filterable and
orderable, so the documented stable paging ``$order=:id`` works.

``:id`` is served as text, ``row-`` and the row id in twelve hex digits: fixed width,
so text order is row-id order and ``$order=:id`` reads in ``__sid`` order.

Data directories written before rows had timestamps are migrated when the row store
opens (``migrate``): their rows get the time of the upgrade, the best that is known.
"""

from __future__ import annotations

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.transforms import ColumnInput

SID = "__sid"
CREATED = "__created_at"
UPDATED = "__updated_at"
STORED = (SID, CREATED, UPDATED)  # the physical system columns, in table order
TABLE_PREFIX = "ds_"  # catalog.views.dataset_table names every dataset table so

ID_FIELD = ":id"
ID_SQL = f"('row-' || lpad(format('{{:x}}', {SID}), 12, '0'))"
SODA_FIELDS: dict[str, ColumnInput] = {
    ID_FIELD: ColumnInput(ID_SQL, SoqlType.TEXT),
    ":created_at": ColumnInput(ident(CREATED), SoqlType.DATE),
    ":updated_at": ColumnInput(ident(UPDATED), SoqlType.DATE),
}


def create_table_sql(qualified_table: str) -> str:
    """A new dataset table: the system columns only; ``apply`` adds the data columns."""
    return (
        f"CREATE TABLE IF NOT EXISTS {qualified_table} "
        f"({SID} BIGINT, {CREATED} TIMESTAMPTZ, {UPDATED} TIMESTAMPTZ)"
    )


def migrate(cur: duckdb.DuckDBPyConnection) -> list[str]:
    """Give dataset tables of older versions their timestamp columns; the tables changed."""
    rows = cur.execute(
        "SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND starts_with(table_name, ?) GROUP BY table_name "
        "HAVING bool_or(column_name = ?) AND NOT bool_or(column_name = ?)",
        [TABLE_PREFIX, SID, CREATED],
    ).fetchall()
    changed = [str(r[0]) for r in rows]
    for name in changed:
        table = ident(name)
        cur.execute("BEGIN TRANSACTION")  # DDL first: DuckDB refuses it after a write
        try:
            for column in (CREATED, UPDATED):
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} TIMESTAMPTZ")
            now = "current_timestamp"
            cur.execute(f"UPDATE {table} SET {CREATED} = {now}, {UPDATED} = {now}")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    return changed
