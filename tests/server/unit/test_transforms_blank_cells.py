"""Conversions of a bare input column read the raw cell (``sqlgen.blank_cell``): they must
answer exactly what the same expression over the ``NULLIF`` form answers, cell by cell."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, compile_expression
from dsmsyncd.server.transforms.sqlgen import blank_cell, null_if_blank

BARE = {"a": ColumnInput(null_if_blank('"a"'), SoqlType.TEXT)}
# The same cells through an expression blank_cell does not recognise: the general path.
WRAPPED = {"a": ColumnInput(null_if_blank('("a")'), SoqlType.TEXT)}

CELLS = [
    "",
    "1",
    "-1.5",
    "+2",
    "-0",
    " 7 ",
    ".5",
    "1.",
    "1e5",
    "1.5E-17",
    "1.5E-18",  # 19 decimals
    "1e-30",
    "0.000000000000000001",
    "0.0000000000000000001",  # 19 decimals
    "12345678901234567890",  # 20 digits before the point: the most there is room for
    "123456789012345678901",  # 21
    "99999999999999999999.999999999999999999",  # 38 digits
    "999999999999999999999.999999999999999999",  # 39 digits
    "1" * 39,
    "1,000",
    "1_000",
    "0x10",
    "abc",
    "inf",
    "-",
    "true",
    " No ",
    "y",
    "2020-01-02",
    "2020-01-02T03:04:05.678",
    "2020-01-02 03:04",
    "2020-02-30",
    "2020-01-02T03:04:05+02:00",
]


def run(columns: dict[str, ColumnInput], expr: str, cells: Sequence[str | None]) -> list[Any]:
    compiled = compile_expression(expr, columns)
    con = duckdb.connect()
    con.execute('CREATE TABLE t (i INTEGER, "a" VARCHAR)')
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(cells)))
    rows = con.execute(
        f"SELECT {compiled.value_sql}, {compiled.error_sql} FROM t ORDER BY i"
    ).fetchall()
    return [(value, json.loads(error) if error else None) for value, error in rows]


def test_blank_cell_recognises_only_a_bare_column() -> None:
    assert blank_cell(null_if_blank('"c3"')) == '"c3"'
    assert blank_cell(null_if_blank('"a "" b"')) == '"a "" b"'
    assert blank_cell(null_if_blank('upper("c3")')) is None
    assert blank_cell(null_if_blank('"a", \'\') || NULLIF("b"')) is None
    assert blank_cell('"c3"') is None


CONVERSIONS = ["to_number(a)", "to_boolean(a)", "to_floating_timestamp(a)", "to_fixed_timestamp(a)"]


@pytest.mark.parametrize("expr", CONVERSIONS)
def test_conversion_of_a_bare_column_skips_the_nullif(expr: str) -> None:
    compiled = compile_expression(expr, BARE)
    assert "NULLIF" not in compiled.value_sql + compiled.error_sql
    assert "NULLIF" in compile_expression(expr, WRAPPED).value_sql


@pytest.mark.parametrize(
    "expr",
    [
        *CONVERSIONS,
        "to_number(a) + 1",
        "to_text(to_number(a))",
        "to_floating_timestamp(a, '%Y-%m-%d')",
        "to_number(upper(a))",
    ],
)
def test_conversion_answers_as_through_nullif(expr: str) -> None:
    cells: list[str | None] = [*CELLS, None]
    assert run(BARE, expr, cells) == run(WRAPPED, expr, cells)


def test_to_number_edge_values_and_errors() -> None:
    answers = dict(zip(CELLS, run(BARE, "to_number(a)", CELLS), strict=True))
    assert answers[""] == (None, None)
    assert answers[" 7 "] == (Decimal(7), None)
    assert answers["1.5E-17"] == (Decimal("0.000000000000000015"), None)
    assert answers["12345678901234567890"] == (Decimal("12345678901234567890"), None)
    big = "99999999999999999999.999999999999999999"
    assert answers[big] == (Decimal(big), None)
    for text in ("1.5E-18", "0.0000000000000000001", "123456789012345678901", "1" * 39):
        value, error = answers[text]
        assert value is None
        assert error["type"] == "number_out_of_range"
        assert error["english"] == (
            f'Unable to convert "{text}" to number: the local server keeps 20 digits '
            "before the point, 18 after"
        )
    for text in ("1,000", "0x10", "abc", "-"):
        value, error = answers[text]
        assert value is None
        assert error["type"] == "type_conversion_failed"
        assert error["english"] == f'Unable to convert "{text}" from text to number'
