"""Translate SODA read parameters (``$select``, ``$where``, ``$order``, ``$limit``,
``$offset`` and ``column=value`` filters) into SQL fragments over a dataset table.

Every expression goes through the transform compiler, so identifiers resolve only to
known columns and user text reaches SQL only as escaped literals: the caller can splice
the fragments into ``SELECT … FROM <table> WHERE … ORDER BY … LIMIT … OFFSET …``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import ColumnInput, ExpressionError, compile_expression, limits
from dsmsyncd.server.transforms.compiler import compile_node
from dsmsyncd.server.transforms.parser import (
    ColumnRef,
    FunCall,
    Lit,
    Node,
    parse_order,
    parse_select,
)
from dsmsyncd.server.transforms.sqlgen import sql_text

_KNOWN = frozenset({"$select", "$where", "$order", "$limit", "$offset"})
# DuckDB's LIMIT and OFFSET are BIGINT: a larger offset can only ever read no row.
MAX_OFFSET = 2**63 - 1
_WHOLE_NUMBER = re.compile(r"\s*([0-9]+)\s*")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The one aggregate served so far: ``count(*)`` alone, optionally aliased, as a client
# asks "how many rows" (the daemon's replace guard). Group-by queries are not supported.
_COUNT_ALL = re.compile(
    r"^\s*count\s*\(\s*\*\s*\)\s*(?:as\s+([A-Za-z_][A-Za-z0-9_]*)\s*)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class SelectedColumn:
    name: str
    sql: str
    soql_type: SoqlType


@dataclass(frozen=True)
class TranslatedQuery:
    select: list[SelectedColumn]
    where_sql: str | None
    order_sql: list[str]
    limit: int
    offset: int
    # True for ``$select=count(*)``: one row whatever the table holds; a read that finds
    # no row answers ``[{"count": "0"}]`` (the select expression is a window count).
    aggregate: bool = False


class QueryError(ValueError):
    """A SODA parameter that cannot be translated; names the parameter to fix.

    ``key`` and ``limit`` are set when an expression limit (``transforms.limits``) was
    hit, so the HTTP error can say which limit and its value.
    """

    def __init__(
        self, message: str, parameter: str, *, key: str | None = None, limit: int | None = None
    ) -> None:
        super().__init__(f"{parameter}: {message}")
        self.message = message
        self.parameter = parameter
        self.key = key
        self.limit = limit

    @classmethod
    def of(cls, exc: ExpressionError, parameter: str) -> QueryError:
        if isinstance(exc, limits.ExpressionLimitError):
            # A statement-wide limit has no position worth showing.
            text = exc.message if exc.limit_reason == "statement_too_large" else str(exc)
            return cls(text, parameter, key=exc.key, limit=exc.limit)
        return cls(str(exc), parameter)


def translate_query(
    params: Mapping[str, str],
    columns: Mapping[str, ColumnInput],
    *,
    default_limit: int = 1000,
    max_limit: int = 50000,
) -> TranslatedQuery:
    """Translate the query parameters of ``GET /resource/{ff}.json``."""
    for key in params:
        if key.startswith("$") and not key.startswith("$$") and key not in _KNOWN:
            raise QueryError(f"unknown parameter; use one of {', '.join(sorted(_KNOWN))}", key)
    text = params.get("$select", "*")
    count_all = _COUNT_ALL.match(text)
    select = (
        [SelectedColumn(count_all.group(1) or "count", "count(*) OVER ()", SoqlType.NUMBER)]
        if count_all
        else _select(text, columns)
    )
    conditions = [_where(params["$where"], columns)] if params.get("$where") else []
    for key, value in params.items():
        if not key.startswith("$"):
            conditions.append(_equality(key, value, columns))
    order = _order(params["$order"], columns) if params.get("$order") else []
    _check_total_sql({"$select": [s.sql for s in select], "$where": conditions, "$order": order})
    limit = _integer(params, "$limit", default_limit, max_limit)
    offset = _integer(params, "$offset", 0, MAX_OFFSET)
    return TranslatedQuery(
        select=select,
        where_sql=" AND ".join(conditions) if conditions else None,
        order_sql=[] if count_all else order,
        limit=1 if count_all else limit,
        offset=0 if count_all else offset,
        aggregate=count_all is not None,
    )


def _select(text: str, columns: Mapping[str, ColumnInput]) -> list[SelectedColumn]:
    try:
        items = parse_select(text)
        selected: list[SelectedColumn] = []
        for n, item in enumerate(items):
            if item.expr is None:
                selected += [SelectedColumn(k, c.sql, c.soql_type) for k, c in columns.items()]
                continue
            compiled = compile_node(text, item.expr, columns)
            name = item.alias or _default_name(item.expr, n)
            if not _ALIAS.match(name):
                raise QueryError(f"{name!r} is not a valid column alias", "$select")
            selected.append(SelectedColumn(name, compiled.value_sql, compiled.output_type))
    except ExpressionError as e:
        raise QueryError.of(e, "$select") from e
    names = [s.name for s in selected]
    duplicates = sorted({x for x in names if names.count(x) > 1})
    if duplicates:
        raise QueryError(f"duplicate output column(s) {duplicates}; add AS aliases", "$select")
    return selected


def _default_name(node: Node, n: int) -> str:
    if isinstance(node, ColumnRef):
        return node.name
    if isinstance(node, FunCall) and node.name.isidentifier():
        refs = [a.name for a in node.args if isinstance(a, ColumnRef)]
        return "_".join([node.name, *refs])
    return f"_expr{n}" if not isinstance(node, Lit) else f"_literal{n}"


def _where(text: str, columns: Mapping[str, ColumnInput]) -> str:
    try:
        compiled = compile_expression(text, columns)
    except ExpressionError as e:
        raise QueryError.of(e, "$where") from e
    if compiled.output_type is not SoqlType.CHECKBOX:
        raise QueryError(
            f"must be a true/false condition, not {compiled.output_type.value}", "$where"
        )
    # Rows whose condition is in error are left out, like rows where it is false.
    return f"(COALESCE({compiled.value_sql}, FALSE) AND ({compiled.error_sql}) IS NULL)"


def _equality(key: str, value: str, columns: Mapping[str, ColumnInput]) -> str:
    column = columns.get(key)
    if column is None:
        raise QueryError("unknown column in a simple filter", key)
    if column.soql_type is SoqlType.TEXT:
        return f"({column.sql} = {sql_text(value)})"
    return f"(CAST({column.sql} AS VARCHAR) = {sql_text(value)})"


def _order(text: str, columns: Mapping[str, ColumnInput]) -> list[str]:
    try:
        items = parse_order(text)
        out: list[str] = []
        for node, desc in items:
            compiled = compile_node(text, node, columns)
            direction = "DESC NULLS FIRST" if desc else "ASC NULLS LAST"
            out.append(f"{compiled.value_sql} {direction}")
        return out
    except ExpressionError as e:
        raise QueryError.of(e, "$order") from e


def _check_total_sql(parts: Mapping[str, list[str]]) -> None:
    """Refuse a read whose SQL, all parameters together, is over the statement limit.

    The error names the parameter that contributes most, the one to simplify first.
    """
    sizes = {key: sum(len(sql) for sql in sqls) for key, sqls in parts.items()}
    if sum(sizes.values()) > limits.MAX_STATEMENT_SQL_CHARS:
        exc = limits.statement_too_large(
            "The query's parameters", "select fewer or simpler expressions"
        )
        raise QueryError.of(exc, max(sizes, key=lambda key: sizes[key]))


def _integer(params: Mapping[str, str], key: str, default: int, maximum: int) -> int:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    match = _WHOLE_NUMBER.fullmatch(raw)
    if match is None:
        raise QueryError(f"must be a whole number of zero or more, not {raw[:40]!r}", key)
    digits = match.group(1).lstrip("0") or "0"
    # Compare lengths first: int() of thousands of digits is slow, then refused.
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise QueryError(f"must be at most {maximum}", key, limit=maximum)
    return int(digits)
