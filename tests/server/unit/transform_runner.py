"""Run one compiled transform over one text cell in a real in-memory DuckDB.

The connection gets the Python UDFs exactly as the row store's does, so geometry,
location and XML functions run the code the server runs.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, compile_expression, register_udfs

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT), "b": ColumnInput('"b"', SoqlType.TEXT)}


def run(expr: str, a: str | None = None, b: str | None = None) -> tuple[Any, Any]:
    """The cell's value and its error (parsed JSON, or None)."""
    compiled = compile_expression(expr, COLUMNS)
    con = duckdb.connect()
    register_udfs(con)
    con.execute('CREATE TABLE t ("a" VARCHAR, "b" VARCHAR)')
    con.execute("INSERT INTO t VALUES (?, ?)", [a, b])
    [(value, error)] = con.execute(
        f"SELECT {compiled.value_sql}, {compiled.error_sql} FROM t"
    ).fetchall()
    con.close()
    return value, json.loads(error) if error is not None else None


def ok(expr: str, a: str | None = None, b: str | None = None) -> Any:
    """The value of a cell that must not be in error."""
    value, error = run(expr, a, b)
    assert error is None, error
    return value


def geo(expr: str, a: str | None = None, b: str | None = None) -> Any:
    """The value of a cell holding JSON text (a geometry, location or json), parsed."""
    value = ok(expr, a, b)
    return None if value is None else json.loads(value)


def error_of(expr: str, a: str | None = None, b: str | None = None) -> Any:
    """The error of a cell that must be in error (its value is then NULL)."""
    value, error = run(expr, a, b)
    assert error is not None, value
    assert value is None, (value, error)
    return error
