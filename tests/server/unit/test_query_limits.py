"""Expression limits (depth, size, text, SQL) as the compiler and the SoQL translator keep them.

Issue 11: one anonymous request nesting ``(to_number(X)+1)::text`` eight times took
the server down. The compiler now keeps SQL linear (``test_transforms_linear.py``);
these tests cover the hard limits of ``transforms/limits.py``: each refusal names the
limit and carries its value. What they answer over HTTP is in
``tests/server/http/test_http_query_limits.py``.
"""

from __future__ import annotations

import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.soql import QueryError, translate_query
from dsmsyncd.server.transforms import ColumnInput, compile_expression, limits
from dsmsyncd.server.transforms.limits import ExpressionLimitError

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT)}


def limit_error(expr: str) -> ExpressionLimitError:
    with pytest.raises(ExpressionLimitError) as info:
        compile_expression(expr, COLUMNS)
    return info.value


def test_parentheses_deeper_than_the_limit_are_refused_not_a_recursion_error() -> None:
    error = limit_error("(" * 5_000 + "a" + ")" * 5_000)
    assert (error.key, error.limit) == ("expression_too_deep", limits.MAX_EXPRESSION_DEPTH)
    assert f"more than {limits.MAX_EXPRESSION_DEPTH} levels deep" in error.message


def test_a_long_operator_chain_is_a_deep_tree_and_is_refused() -> None:
    error = limit_error(" || ".join(["a"] * (limits.MAX_EXPRESSION_DEPTH + 2)))
    assert (error.key, error.limit) == ("expression_too_deep", limits.MAX_EXPRESSION_DEPTH)
    ok = " || ".join(["a"] * limits.MAX_EXPRESSION_DEPTH)
    assert compile_expression(ok, COLUMNS).output_type is SoqlType.TEXT


def test_too_many_nodes_is_refused() -> None:
    items = ",".join(["'x'"] * limits.MAX_EXPRESSION_NODES)
    error = limit_error(f"a in ({items})")
    assert (error.key, error.limit) == ("expression_too_large", limits.MAX_EXPRESSION_NODES)
    assert str(limits.MAX_EXPRESSION_NODES) in error.message


def test_too_long_text_is_refused_before_parsing() -> None:
    error = limit_error("'" + "x" * limits.MAX_EXPRESSION_CHARS + "'")
    assert (error.key, error.limit) == ("expression_too_long", limits.MAX_EXPRESSION_CHARS)
    assert f"the limit is {limits.MAX_EXPRESSION_CHARS} characters" in error.message


def test_sql_over_the_limit_is_refused() -> None:
    # Each `coalesce` argument is a few KB of SQL; 200 of them are over the SQL limit.
    item = "to_text(to_number(to_text(to_number(a) * 2)) * 2)"
    error = limit_error(f"coalesce({', '.join([item] * 200)})")
    assert (error.key, error.limit) == ("expression_sql_too_large", limits.MAX_SQL_CHARS)
    assert f"more than {limits.MAX_SQL_CHARS} characters of SQL" in error.message


def test_statement_over_the_total_sql_limit_names_its_largest_parameter() -> None:
    """Each item is under the per-expression limit; together they are over the total."""
    item = "a"
    for _ in range(45):
        item = f"to_text(to_multipoint({item}))"
    assert len(compile_expression(item, COLUMNS).value_sql) < limits.MAX_SQL_CHARS
    select = ", ".join(f"{item} AS c{i}" for i in range(10))
    order = ", ".join([item] * 9)
    with pytest.raises(QueryError) as info:
        translate_query({"$select": select, "$order": order}, COLUMNS)
    error = info.value
    assert (error.parameter, error.key) == ("$select", "statement_sql_too_large")
    assert error.limit == limits.MAX_STATEMENT_SQL_CHARS
    assert f"more than {limits.MAX_STATEMENT_SQL_CHARS} characters of SQL" in error.message
