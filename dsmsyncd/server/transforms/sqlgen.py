"""SQL text helpers shared by the function builders: literals, error objects, probes.

Error cells are built in SQL as the JSON text of ``{"type", "english", "data"}`` (digest
§1.9) so a whole column's errors come out of the same vectorised query as its values.
The probe connection lets the compiler ask DuckDB, at compile time, whether a regex,
strptime format or time zone is acceptable: a bad one must be an ExpressionError, never
a runtime failure of the import query.
"""

from __future__ import annotations

import re
import threading

import duckdb

from dsmsyncd.server.soql_types import SoqlType, number_text_sql

NULL = "NULL"

_probe_lock = threading.Lock()
_probe_connection: duckdb.DuckDBPyConnection | None = None


def sql_text(value: str) -> str:
    """A SQL string literal; the only way user text ever reaches generated SQL."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return "'" + value.replace("'", "''") + "'"


def null_if_blank(cell_sql: str) -> str:
    """An input cell as expressions read it: an empty cell is null (``column_inputs``)."""
    return f"NULLIF({cell_sql}, '')"


_NULL_IF_BLANK_COLUMN = re.compile(r"""NULLIF\(("(?:[^"]|"")+"), ''\)""")


def blank_cell(value_sql: str) -> str | None:
    """The bare input column under :func:`null_if_blank`, if ``value_sql`` is exactly that.

    For builders whose answer for ``''`` is their answer for null: DuckDB evaluates a
    function of a bare dictionary-compressed column once per distinct value, and the
    ``NULLIF`` in front of it turns that off (issue 9: two to three times the cost of
    ``to_number`` on a flights-sized file).
    """
    found = _NULL_IF_BLANK_COLUMN.fullmatch(value_sql)
    return found.group(1) if found else None


def first_error(errors: list[str]) -> str:
    """The leftmost non-null error of several error expressions."""
    real = [e for e in errors if e != NULL]
    if not real:
        return NULL
    if len(real) == 1:
        return real[0]
    return f"COALESCE({', '.join(real)})"


def fail_when(condition: str, error: str) -> str:
    return f"CASE WHEN {condition} THEN {error} END"


def error_object(kind: str, english_sql: str, data: dict[str, str] | None = None) -> str:
    """SQL for the JSON text of an error object; `english_sql` and data values are SQL."""
    pairs = ", ".join(f"{sql_text(k)}, {v}" for k, v in (data or {}).items())
    return (
        f"CAST(json_object('type', {sql_text(kind)}, 'english', {english_sql}, "
        f"'data', json_object({pairs})) AS VARCHAR)"
    )


def conversion_failed(value_text_sql: str, source: SoqlType | str, target: SoqlType | str) -> str:
    """The ``type_conversion_failed`` error for a value (given as SQL text)."""
    english = f"'Unable to convert \"' || {value_text_sql} || '\" from {source} to {target}'"
    return error_object(
        "type_conversion_failed",
        english,
        {"value": value_text_sql, "source_type": sql_text(source), "target_type": sql_text(target)},
    )


def plain_error(kind: str, english: str, value_text_sql: str | None = None) -> str:
    data = {"value": value_text_sql} if value_text_sql is not None else {}
    return error_object(kind, sql_text(english), data)


def probe(sql: str, params: list[object] | None = None) -> bool:
    """Whether DuckDB accepts a constant query; used to validate literal arguments."""
    global _probe_connection
    with _probe_lock:
        if _probe_connection is None:
            _probe_connection = duckdb.connect(":memory:")
        try:
            _probe_connection.execute(sql, params or []).fetchall()
        except duckdb.Error:
            return False
        return True


def text_of(value_sql: str, soql_type: SoqlType) -> str:
    """SQL rendering any value as the text SODA would show (used by to_text and ||)."""
    if soql_type in (SoqlType.TEXT, SoqlType.NULL):
        return value_sql
    if soql_type is SoqlType.NUMBER:
        return number_text_sql(value_sql)
    if soql_type is SoqlType.CHECKBOX:
        return f"(CASE WHEN {value_sql} THEN 'true' WHEN NOT {value_sql} THEN 'false' END)"
    if soql_type is SoqlType.CALENDAR_DATE:
        return f"regexp_replace(strftime({value_sql}, '%Y-%m-%dT%H:%M:%S.%g'), '\\.000$', '')"
    if soql_type is SoqlType.DATE:
        local = f"timezone('UTC', {value_sql})"
        return f"(regexp_replace(strftime({local}, '%Y-%m-%dT%H:%M:%S.%g'), '\\.000$', '') || 'Z')"
    return value_sql  # JSON text types
