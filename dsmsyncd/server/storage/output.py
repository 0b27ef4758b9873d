"""Output tables: materialising an output schema, and reading its rows and errors back.

An output table holds, for every row of the input table, ``__offset`` and per output
column ``v{i}`` (the value, in the DuckDB storage type of the column's SoQL type, NULL
when the cell is in error) and ``e{i}`` (the error as JSON text, or NULL). It is built
by one vectorised ``CREATE TABLE … AS SELECT`` over the input table, so the transform
expressions never run row by row in Python.

These functions block; :class:`~dsmsyncd.server.storage.rowstore.RowStore` runs them in a
worker thread with a cursor of their own.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb

from dsmsyncd.server.soql_types import (
    SoqlType,
    duckdb_type,
    format_number,
    to_csv_text,
    to_wire,
)
from dsmsyncd.server.storage.sql import column_types, drop_relation_sql, ident
from dsmsyncd.server.storage.sql import table as qtable

ERRORS_CSV_COLUMN = "errors"


class CompiledLike(Protocol):
    """What the row store reads of a ``transforms.CompiledExpression``."""

    @property
    def value_sql(self) -> str: ...

    @property
    def error_sql(self) -> str: ...

    @property
    def output_type(self) -> SoqlType: ...

    @property
    def referenced_columns(self) -> tuple[str, ...]: ...

    @property
    def parsed_expr(self) -> dict[str, Any]: ...


_ERROR_COLUMN = re.compile(r"e[0-9]+")


@dataclass(frozen=True)
class OutputColumnPlan:
    field_name: str
    compiled: CompiledLike


@dataclass(frozen=True)
class OutputStats:
    total_rows: int
    error_rows: int  # rows with at least one error cell
    column_error_counts: list[int]


@dataclass(frozen=True)
class InputRef:
    """The input table an output table was computed from, to show raw inputs of errors."""

    table: str
    columns: Mapping[str, str]  # input field name → physical column (e.g. "c0")


def materialize(
    cur: duckdb.DuckDBPyConnection,
    input_table: str,
    output_table: str,
    columns: Sequence[OutputColumnPlan],
) -> OutputStats:
    """Define the output schema's cells over its input table, and count its errors.

    The output is a VIEW, not a copy: every transform is vectorised SQL, so evaluating
    it again where it is read (a page, an export, the apply) costs less than writing
    1M rows twice (measured in bench/RESULTS.md). Expressions that are not
    deterministic (``random_*``) are written out once, so that every read agrees.

    An earlier relation of that name (a materialisation resumed after a restart) is
    replaced: ``CREATE OR REPLACE`` replaces one of the same kind without a ``DROP``
    of its own (issue 9: a statement per small file); one of the other kind is dropped
    first.
    """
    out = qtable(output_table)
    kind = "TABLE" if any(_volatile(c.compiled.parsed_expr) for c in columns) else "VIEW"
    cells = "".join(
        f", CAST(({c.compiled.value_sql}) AS {duckdb_type(c.compiled.output_type)}) AS v{i}"
        f", CAST(({c.compiled.error_sql}) AS VARCHAR) AS e{i}"
        for i, c in enumerate(columns)
    )
    create = f"CREATE OR REPLACE {kind} {out} AS SELECT __offset{cells} FROM {qtable(input_table)}"
    try:
        cur.execute(create)
    except duckdb.CatalogException as exc:
        if "trying to replace with type" not in str(exc):
            raise
        drop_relation_sql(cur, output_table)
        cur.execute(create)
    counts = [f"count(e{i})" for i in range(len(columns))]
    select = ", ".join(["count(*)", f"count(*) FILTER (WHERE {any_error(len(columns))})", *counts])
    row = cur.execute(f"SELECT {select} FROM {out}").fetchone()
    assert row is not None
    return OutputStats(
        total_rows=int(row[0]), error_rows=int(row[1]), column_error_counts=list(row[2:])
    )


def _volatile(node: Any) -> bool:
    if isinstance(node, dict):
        name = node.get("function_name")
        if isinstance(name, str) and name.startswith("random_"):
            return True
        return any(_volatile(v) for v in node.values())
    if isinstance(node, list):
        return any(_volatile(v) for v in node)
    return False


def any_error(count: int, prefix: str = "") -> str:
    """SQL true when any of ``e0 .. e{count-1}`` holds an error."""
    if count == 0:
        return "FALSE"
    return "(" + " OR ".join(f"{prefix}e{i} IS NOT NULL" for i in range(count)) + ")"


def error_column_count(cur: duckdb.DuckDBPyConnection, output_table: str) -> int:
    return sum(1 for name in column_types(cur, output_table) if _ERROR_COLUMN.fullmatch(name))


def page_query(
    output_table: str,
    columns: Sequence[OutputColumnPlan],
    inputs: InputRef,
    *,
    errors_only: bool,
    column_index: int | None,
    paged: bool,
) -> tuple[str, list[str]]:
    """SQL for output rows joined to the raw inputs that errors refer to.

    Returns the statement (with ``LIMIT ? OFFSET ?`` when ``paged``) and the input
    field names whose raw values follow the ``__offset, v0, e0, …`` columns.
    """
    where = ""
    if column_index is not None:
        where = f"WHERE e{column_index} IS NOT NULL"
    elif errors_only:
        where = f"WHERE {any_error(len(columns))}"
    refs = sorted(
        {r for c in columns for r in c.compiled.referenced_columns if r in inputs.columns}
    )
    cells = "".join(f", o.v{i}, o.e{i}" for i in range(len(columns)))
    raw = "".join(f", i.{ident(inputs.columns[r])}" for r in refs)
    limit = "LIMIT ? OFFSET ?" if paged else ""
    sql = (
        f"SELECT o.__offset{cells}{raw} FROM "
        f"(SELECT * FROM {qtable(output_table)} {where} ORDER BY __offset {limit}) o "
        f"LEFT JOIN {qtable(inputs.table)} i ON i.__offset = o.__offset ORDER BY o.__offset"
    )
    return sql, refs


def to_items(
    rows: Iterable[tuple[Any, ...]], columns: Sequence[OutputColumnPlan], refs: list[str]
) -> list[dict[str, Any]]:
    """Query rows as ``{"offset", "row": [cell…]}`` items (digest §1.9)."""
    n = len(columns)
    items = []
    for row in rows:
        raw = dict(zip(refs, row[1 + 2 * n :], strict=True))
        cells: list[dict[str, Any]] = []
        for i, col in enumerate(columns):
            value, error = row[1 + 2 * i], row[2 + 2 * i]
            if error is None:
                cells.append({"ok": to_wire(col.compiled.output_type, value)})
                continue
            inputs = {r: {"ok": raw.get(r)} for r in col.compiled.referenced_columns}
            cells.append({"error": {"message": _error_object(error), "inputs": inputs}})
        items.append({"offset": row[0], "row": cells})
    return items


def csv_header(columns: Sequence[OutputColumnPlan], *, with_errors: bool) -> bytes:
    names = [c.field_name for c in columns]
    return csv_header_names([*names, ERRORS_CSV_COLUMN] if with_errors else names)


def csv_header_names(names: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(names)
    return buffer.getvalue().encode()


def to_csv(
    rows: Iterable[tuple[Any, ...]],
    columns: Sequence[OutputColumnPlan],
    refs: list[str],
    *,
    with_errors: bool,
) -> bytes:
    """Rows as CSV text; an error cell shows its raw input, and the message goes last.

    Works on the query tuples directly (not via ``to_items``): an export is every row.
    """
    n = len(columns)
    types = [c.compiled.output_type for c in columns]
    raw_at = [
        [1 + 2 * n + refs.index(r) for r in c.compiled.referenced_columns if r in refs]
        for c in columns
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        values: list[str] = []
        messages: list[str] = []
        for i in range(n):
            error = row[2 + 2 * i]
            if error is None:
                values.append(to_csv_text(types[i], row[1 + 2 * i]))
                continue
            raws = [row[j] for j in raw_at[i] if row[j] is not None]
            values.append(raws[0] if len(raws) == 1 else "")
            message = _error_object(error)
            english = message.get("english") if isinstance(message, dict) else message
            messages.append(f"{columns[i].field_name}: {english}")
        writer.writerow([*values, "; ".join(messages)] if with_errors else values)
    return buffer.getvalue().encode()


def validate_row_identifier(
    cur: duckdb.DuckDBPyConnection, output_table: str, column_index: int
) -> dict[str, Any]:
    """Whether column ``v{column_index}`` is non-null and unique over the importable rows."""
    out = qtable(output_table)
    clean = f"NOT {any_error(error_column_count(cur, output_table))}"
    v = f"v{column_index}"
    null = cur.execute(
        f"SELECT __offset FROM {out} WHERE {clean} AND {v} IS NULL ORDER BY __offset LIMIT 1"
    ).fetchone()
    if null is not None:
        return {"valid": False, "reason": "null", "what": None, "where": null[0]}
    dup = cur.execute(
        f"SELECT __offset, {v} FROM (SELECT __offset, {v}, row_number() OVER "
        f"(PARTITION BY {v} ORDER BY __offset) AS nth FROM {out} WHERE {clean}) "
        "WHERE nth = 2 ORDER BY __offset LIMIT 1"
    ).fetchone()
    if dup is not None:
        is_number = isinstance(dup[1], (float, decimal.Decimal))
        what = format_number(dup[1]) if is_number else str(dup[1])
        return {"valid": False, "reason": "duplicate", "what": what, "where": dup[0]}
    return {"valid": True}


def _error_object(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
