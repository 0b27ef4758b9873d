"""The transform compiler's language: precedence, literals, errors and their positions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import (
    ColumnInput,
    CompileContext,
    ExpressionError,
    catalogue,
    compile_expression,
)

COLUMNS = {name: ColumnInput(f'"{name}"', SoqlType.TEXT) for name in ("a", "b", "when")}


def evaluate(
    expr: str, rows: Sequence[tuple[str | None, ...]] | None = None
) -> list[tuple[Any, Any]]:
    """Run the compiled value and error SQL over rows of (a, b, when) text cells."""
    compiled = compile_expression(expr, COLUMNS)
    con = duckdb.connect()
    con.execute('CREATE TABLE t ("a" VARCHAR, "b" VARCHAR, "when" VARCHAR, i INTEGER)')
    for i, row in enumerate(rows or [(None, None, None)]):
        con.execute("INSERT INTO t VALUES (?, ?, ?, ?)", [*row, i])
    result = con.execute(
        f"SELECT {compiled.value_sql}, {compiled.error_sql} FROM t ORDER BY i"
    ).fetchall()
    return [(v, json.loads(e) if e is not None else None) for v, e in result]


def value_of(expr: str) -> Any:
    [(value, error)] = evaluate(expr)
    assert error is None, error
    return value


def test_precedence_multiplication_before_addition() -> None:
    assert value_of("1 + 2 * 3") == 7


def test_precedence_power_is_right_associative_and_above_unary_minus() -> None:
    assert value_of("2 ^ 3 ^ 2") == 512
    assert value_of("-2 ^ 2") == -4


def test_precedence_and_before_or() -> None:
    assert value_of("true or false and false") is True
    assert value_of("not true or true") is True


def test_precedence_concat_below_arithmetic() -> None:
    assert value_of("'n=' || 1 + 2") == "n=3"


def test_keywords_are_case_insensitive() -> None:
    assert value_of("1 BETWEEN 0 AND 2 AND 3 NOT IN (1, 2) Or FALSE") is True


def test_predicates_is_null_like_in() -> None:
    assert value_of("null IS NULL") is True
    assert value_of("'abc' LIKE 'a%'") is True
    assert value_of("'abc' NOT LIKE 'b%'") is True
    assert value_of("'x' IN ('y', 'x')") is True


def test_literals_quote_escapes() -> None:
    assert value_of("'it''s'") == "it's"
    assert value_of('"double"') == "double"


def test_text_literal_coerces_to_number_in_comparison() -> None:
    assert value_of("2 > '1.5'") is True


def test_parsed_expr_and_referenced_columns() -> None:
    compiled = compile_expression("to_number(`b`) + to_number(a) + to_number(b)", COLUMNS)
    assert compiled.referenced_columns == ("b", "a")
    assert compiled.output_type is SoqlType.NUMBER
    assert compiled.parsed_expr["function_name"] == "op$+"
    inner = compiled.parsed_expr["args"][0]["args"][0]
    assert inner == {
        "type": "funcall",
        "function_name": "to_number",
        "args": [{"type": "column_ref", "value": "b"}],
    }


def test_error_sql_is_null_literal_when_expression_cannot_fail() -> None:
    assert compile_expression("upper(a) || b", COLUMNS).error_sql == "NULL"


def test_bad_number_is_a_cell_error_not_a_query_failure() -> None:
    [ok, bad, empty] = evaluate(
        "to_number(a)", [("12", None, None), ("x", None, None), ("", None, None)]
    )
    assert ok == (12.0, None)
    assert bad[0] is None
    assert bad[1] == {
        "type": "type_conversion_failed",
        "english": 'Unable to convert "x" from text to number',
        "data": {"value": "x", "source_type": "text", "target_type": "number"},
    }
    assert empty == (None, None)


def test_divide_by_zero_is_a_cell_error() -> None:
    [(value, error)] = evaluate("10 / to_number(a)", [("0", None, None)])
    assert value is None
    assert error["type"] == "divide_by_zero"


def test_errors_propagate_first_error_wins() -> None:
    [(value, error)] = evaluate("to_number(a) + to_number(b)", [("x", "y", None)])
    assert value is None
    assert error["data"]["value"] == "x"


def test_forgive_turns_error_into_null_or_default() -> None:
    rows = [("x", None, None)]
    assert evaluate("forgive(to_number(a))", rows) == [(None, None)]
    assert evaluate("forgive(to_number(a), -1)", rows) == [(-1.0, None)]


def test_error_function_and_lazy_case() -> None:
    rows = [("1", None, None), ("2", None, None)]
    result = evaluate("case(a = '1', 'one', true, error('not one'))", rows)
    assert result[0] == ("one", None)
    assert result[1][1]["english"] == "not one"


def test_coalesce_skips_nulls_but_not_errors() -> None:
    rows = [(None, "5", None), ("x", "5", None)]
    result = evaluate("coalesce(to_number(a), to_number(b))", rows)
    assert result[0] == (5.0, None)
    assert result[1][0] is None
    assert result[1][1]["type"] == "type_conversion_failed"


def test_null_propagating_operator_masks_value_of_errored_argument() -> None:
    [(value, error)] = evaluate("to_number(a) IS NULL", [("x", None, None)])
    assert value is None
    assert error is not None


def test_source_created_at_reads_the_context() -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    compiled = compile_expression("source_created_at()", COLUMNS, CompileContext(when))
    assert duckdb.connect().execute(f"SELECT {compiled.value_sql}").fetchall() == [(when,)]


def error_for(expr: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(expr, COLUMNS)
    return info.value


def test_expression_error_syntax_position() -> None:
    e = error_for("to_number(a")
    assert (e.reason, e.position) == ("syntax", 11)
    e = error_for("1 +\n  * 2")
    assert (e.reason, e.line, e.column) == ("syntax", 2, 3)


def test_expression_error_unterminated_literal() -> None:
    e = error_for("upper('abc)")
    assert (e.reason, e.position) == ("syntax", 6)


def test_expression_error_unknown_column_suggests() -> None:
    e = error_for("upper(`bb`)")
    assert (e.reason, e.position) == ("unknown_column", 6)
    assert "`b`" in e.message


def test_expression_error_unknown_function() -> None:
    e = error_for("1 + uper(a)")
    assert (e.reason, e.position) == ("unknown_function", 4)
    assert "upper" in e.message


def test_expression_error_type_mismatch_names_function_argument_and_types() -> None:
    e = error_for("upper(to_number(a))")
    assert (e.reason, e.position) == ("type_mismatch", 6)
    assert "upper" in e.message
    assert "argument 1 of type number" in e.message
    assert "expects text" in e.message


def test_expression_error_not_available() -> None:
    e = error_for("geocode(a, b, a, b)")
    assert e.reason == "not_available"
    assert e.message.startswith("`geocode` is not available on the local server: it needs")


def test_expression_error_bad_regex_is_compile_time() -> None:
    e = error_for("regex_replace(a, '(', 'x')")
    assert (e.reason, e.position) == ("syntax", 17)


def test_catalogue_lists_implemented_and_missing() -> None:
    infos = {info.name: info for info in catalogue()}
    assert infos["to_number"].implemented
    assert not infos["geocode"].implemented
    assert infos["simplify"].implemented
    assert not infos["http_get"].implemented
