"""SQL helpers shared by the ingest and row-store modules.

Every identifier and literal that reaches DuckDB from outside goes through these few
functions, so injection is ruled out in one place: identifiers are double-quoted with
``"`` doubled, literals single-quoted with ``'`` doubled, and table names must match
``[a-z0-9_]+`` before they are used at all.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

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
    """Drop ``name`` whether it is a table or a view (output schemas may be either).

    Two DROP ... IF EXISTS, not a look in ``duckdb_tables()``/``duckdb_views()``: those
    list the whole catalog, which grows by a few relations per source, and the look
    grew with it (issue 9: 33 ms at 6,000 relations, a quarter of the server's time
    per small file). Outside a transaction only: a view under that name makes the
    first DROP fail, which would abort an open transaction.
    """
    try:
        cur.execute(f"DROP TABLE IF EXISTS {table(name)}")
    except duckdb.CatalogException as exc:
        if "is of type View" not in str(exc):
            raise
        cur.execute(f"DROP VIEW IF EXISTS {table(name)}")


def relation_kind(cur: Any, name: str) -> str | None:
    """``"TABLE"`` or ``"VIEW"`` if a relation of that name exists, else None.

    A lookup by name (the relation API binds it), not a scan of the catalog (see
    :func:`drop_relation_sql`); a missing name fails in the bind only, which leaves an
    open transaction usable. Our names (``in_``, ``out_``, ``ds_``…) never collide with
    DuckDB's internal views or with the apply's temporary tables.

    Only for names that usually exist: a missing one costs a scan of the whole catalog
    after all, DuckDB's error looking for names like it ("Did you mean …?"), 8 ms at
    20,000 relations (issue 9: asked once per small file, it made the server's CPU
    per file grow with the files synced). Where a name is usually missing, ``DROP
    ... IF EXISTS`` or what the caller knows answers in constant time.
    """
    try:
        relation = cur.table(check_table(name))
    except duckdb.CatalogException:
        return None
    return "TABLE" if relation.type == "TABLE_RELATION" else "VIEW"


def table_columns(cur: Any, name: str) -> dict[str, str] | None:
    """Column name → DuckDB type of table ``name``, in order; None if there is no table.

    The look-up of :func:`relation_kind`, whose relation also carries the columns:
    one look-up instead of ``table_exists`` and then ``column_types`` (issue 9: a
    ``pragma_table_info`` statement per apply). Types are spelt as ``column_types``
    spells them.
    """
    try:
        relation = cur.table(check_table(name))
    except duckdb.CatalogException:
        return None
    if relation.type != "TABLE_RELATION":
        return None
    return {str(n): str(t) for n, t in zip(relation.columns, relation.types, strict=True)}


def relation_exists(cur: Any, name: str) -> bool:
    """A table or a view of that name exists."""
    return relation_kind(cur, name) is not None


def table_exists(cur: Any, name: str) -> bool:
    """A table of that name exists."""
    return relation_kind(cur, name) == "TABLE"


def column_types(cur: Any, name: str) -> dict[str, str]:
    """Column name → DuckDB type of an existing table or view, in order.

    ``pragma_table_info`` looks the relation up by name; ``duckdb_columns()`` lists
    every column of every relation (issue 9: 19 ms at 6,000 relations, twice per apply).
    """
    rows = cur.execute(
        "SELECT name, type FROM pragma_table_info(?)", [check_table(name)]
    ).fetchall()
    return {str(n): str(t) for n, t in rows}


def count(cur: Any, source: str, expr: str = "count(*)") -> int:
    """``expr`` (by default the row count) over ``source``, a quoted table or subquery."""
    row = cur.execute(f"SELECT {expr} FROM {source}").fetchone()
    return int(row[0]) if row else 0
