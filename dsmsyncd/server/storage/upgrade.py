"""Bring a data directory written by an older server up to today's column types.

Before numbers were exact decimals they were stored as DOUBLE. Opening such a row store
converts every DOUBLE column (dataset, output and snapshot tables alike: nothing else
is stored as DOUBLE) to ``NUMBER_SQL_TYPE`` by way of each double's shortest text, so
``0.30000000000000004`` stays exactly what it was, and everything that reads numbers
meets one type. A double beyond the decimal's range (20 digits before the point) has
no exact decimal; it becomes null, and the log says how many there were.
"""

from __future__ import annotations

import logging

import duckdb

from dsmsyncd.server.soql_types import NUMBER_SQL_TYPE, double_to_number_sql
from dsmsyncd.server.storage.sql import ident
from dsmsyncd.server.storage.sql import table as qtable

logger = logging.getLogger("dsmsyncd.server.storage.upgrade")


def double_columns(cur: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(table, column) of every DOUBLE column in the main schema."""
    rows = cur.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE data_type = 'DOUBLE' "
        "AND schema_name = 'main' AND database_name = current_database() "
        "AND table_name IN (SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
        "AND schema_name = 'main' AND database_name = current_database()) "
        "ORDER BY table_name, column_index"
    ).fetchall()
    return [(str(t), str(c)) for t, c in rows]


def upgrade_numbers(cur: duckdb.DuckDBPyConnection) -> int:
    """Convert DOUBLE columns to decimals; returns how many columns were converted."""
    columns = double_columns(cur)
    for table, column in columns:
        name = ident(column)
        lost_row = cur.execute(
            f"SELECT count(*) FROM {qtable(table)} WHERE {name} IS NOT NULL "
            f"AND {double_to_number_sql(name)} IS NULL"
        ).fetchone()
        lost = int(lost_row[0]) if lost_row else 0
        cur.execute(
            f"ALTER TABLE {qtable(table)} ALTER COLUMN {name} SET DATA TYPE {NUMBER_SQL_TYPE} "
            f"USING {double_to_number_sql(name)}"
        )
        if lost:
            logger.warning(
                "table %s column %s: %d numbers beyond the decimal range became null",
                table,
                column,
                lost,
            )
    return len(columns)
