"""SQL helpers shared by the ingest and row-store modules.

Every identifier and literal that reaches DuckDB from outside goes through these few
functions, so injection is ruled out in one place: identifiers are double-quoted with
``"`` doubled, literals single-quoted with ``'`` doubled, and table names must match
``[a-z0-9_]+`` before they are used at all.
"""

from __future__ import annotations

import re
from typing import Any

_TABLE_NAME = re.compile(r"[a-z0-9_]+")


def check_table(name: str) -> str:
    """Return ``name`` if it is a safe table name, else raise ``ValueError``."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"table name {name!r} must match [a-z0-9_]+")
    return name


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def table(name: str) -> str:
    """A checked, quoted table name."""
    return ident(check_table(name))


def literal(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def drop_relation_sql(cur: Any, name: str) -> None:
    """Drop ``name`` whether it is a table or a view (output schemas may be either)."""
    row = cur.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE view_name = ? AND NOT internal "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE table_name = ?",
        [check_table(name), name],
    ).fetchone()
    if row is not None:
        cur.execute(f"DROP {row[0]} IF EXISTS {table(name)}")


def relation_exists(cur: Any, name: str) -> bool:
    """A table or a view of that name exists."""
    row = cur.execute(
        "SELECT (SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal)"
        " + (SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary)",
        [name, name],
    ).fetchone()
    return bool(row and row[0])


def table_exists(cur: Any, name: str) -> bool:
    """A (non-temporary) table of that name exists."""
    row = cur.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND NOT temporary", [name]
    ).fetchone()
    return bool(row and row[0])


def count(cur: Any, source: str, expr: str = "count(*)") -> int:
    """``expr`` (by default the row count) over ``source``, a quoted table or subquery."""
    row = cur.execute(f"SELECT {expr} FROM {source}").fetchone()
    return int(row[0]) if row else 0
