"""Translate SODA read parameters into SQL fragments over a dataset table.

The parameters are those of dev.socrata.com's "Queries" page: ``$select``, ``$where``,
``$order``, ``$group``, ``$having``, ``$limit``, ``$offset``, ``$q`` (full-text search),
``$query`` (a whole statement, split by ``soql_statement``) and ``column=value`` simple
filters, plus the system fields ``:id``, ``:created_at``, ``:updated_at`` (``:*``).

Every expression goes through the transform compiler, so identifiers resolve only to
known columns and user text reaches SQL only as escaped literals; aggregates and geo
filters are rewritten first (``soql_calls``) into synthetic columns whose arguments the
compiler compiles. Select aliases may be used in ``$order``, ``$group`` and
``$having``: the alias's expression is put in its place before compiling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage import soql_statement
from dsmsyncd.server.storage.soql_calls import CallRewriter, shape
from dsmsyncd.server.storage.system_columns import ID_FIELD, SID, SODA_FIELDS
from dsmsyncd.server.transforms import ColumnInput, ExpressionError, limits
from dsmsyncd.server.transforms.compiler import compile_node
from dsmsyncd.server.transforms.parser import (
    ColumnRef,
    FunCall,
    Lit,
    Node,
    parse_expression,
    parse_order,
    parse_select,
)
from dsmsyncd.server.transforms.sqlgen import sql_text

_KNOWN = frozenset(
    {"$select", "$where", "$order", "$group", "$having", "$limit", "$offset", "$q", "$query"}
)
# DuckDB's LIMIT and OFFSET are BIGINT: a larger offset can only ever read no row.
MAX_OFFSET = 2**63 - 1
_WHOLE_NUMBER = re.compile(r"\s*([0-9]+)\s*")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The error keys a hosted site answers with, by the compiler's reason.
_KEYS = {"unknown_column": "query.soql.no-such-column", "type_mismatch": "query.soql.type-mismatch"}


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
    group_sql: list[str] = field(default_factory=list)
    having_sql: str | None = None
    # True for a grouped or aggregate read: a row per group (one row when there is no
    # $group, even over no rows), ordered after $order by the selected columns.
    aggregate: bool = False


class QueryError(ValueError):
    """A SODA parameter that cannot be translated; names the parameter to fix.

    ``key`` is the error key to answer with when it is not the generic one: a limit of
    ``transforms.limits`` (then ``limit`` is its value), an unknown column or a type
    mismatch (the keys a hosted site uses).
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
        return cls(str(exc), parameter, key=_KEYS.get(exc.reason))


def translate_query(
    params: Mapping[str, str],
    columns: Mapping[str, ColumnInput],
    *,
    default_limit: int = 1000,
    max_limit: int = 50000,
) -> TranslatedQuery:
    """Translate the query parameters of ``GET /resource/{ff}.json``."""
    params = _expand_statement(params)
    for key in params:
        if key.startswith("$") and not key.startswith("$$") and key not in _KNOWN:
            raise QueryError(f"unknown parameter; use one of {', '.join(sorted(_KNOWN))}", key)
    query = _Translation({**columns, **SODA_FIELDS}, columns)
    query.select(params.get("$select") or "*")
    group = query.group(params["$group"]) if params.get("$group") else []
    having = query.condition("$having", params["$having"]) if params.get("$having") else None
    conditions = [query.condition("$where", params["$where"])] if params.get("$where") else []
    conditions += [query.equality(k, v) for k, v in params.items() if not k.startswith("$")]
    search = [query.search(params["$q"])] if params.get("$q") else []
    order = query.order(params["$order"]) if params.get("$order") else []
    aggregate = bool(group) or query.rewriter.aggregated
    if aggregate:
        query.check_grouped()
    elif having is not None:
        raise QueryError("needs $group or an aggregate such as count(*) in $select", "$having")
    select_sql = [s.sql for s in query.selected]
    _check_total_sql(
        {"$select": select_sql, "$where": conditions, "$order": order, "$group": group}
        | {"$having": [having] if having else [], "$q": search}
    )
    conditions += search
    return TranslatedQuery(
        select=query.selected,
        where_sql=" AND ".join(conditions) if conditions else None,
        order_sql=order,
        limit=_integer(params, "$limit", default_limit, max_limit),
        offset=_integer(params, "$offset", 0, MAX_OFFSET),
        group_sql=group,
        having_sql=having,
        aggregate=aggregate,
    )


def _expand_statement(params: Mapping[str, str]) -> Mapping[str, str]:
    """``$query`` replaced by the parameters it holds; it stands alone (but for filters)."""
    text = params.get("$query")
    if text is None:
        return params
    others = sorted(k for k in params if k in _KNOWN and k != "$query")
    if others:
        raise QueryError(f"cannot be combined with {', '.join(others)}; put them in it", "$query")
    try:
        inner = soql_statement.split_statement(text)
    except ExpressionError as e:
        raise QueryError.of(e, "$query") from e
    return {**{k: v for k, v in params.items() if k != "$query"}, **inner}


class _Translation:
    """The expressions of one read, compiled against the dataset's columns."""

    def __init__(self, columns: Mapping[str, ColumnInput], data: Mapping[str, ColumnInput]):
        self.rewriter = CallRewriter(columns)
        self.data = data  # the dataset's own columns: what `*` and $q read
        self.selected: list[SelectedColumn] = []
        self.aliases: dict[str, Node] = {}
        self.group_shapes: set[str] = set()
        self.checked: list[tuple[str, str, Node]] = []  # (parameter, text, rewritten node)

    def compile(self, parameter: str, text: str, node: Node) -> tuple[str, SoqlType]:
        try:
            compiled = compile_node(text, node, self.rewriter.all_columns())
        except ExpressionError as e:
            raise QueryError.of(e, parameter) from e
        return compiled.value_sql, compiled.output_type

    def rewrite(self, parameter: str, text: str, node: Node, *, aggregates: bool) -> Node:
        try:
            return self.rewriter.rewrite(text, self._unalias(node), aggregates=aggregates)
        except ExpressionError as e:
            raise QueryError.of(e, parameter) from e

    def _unalias(self, node: Node) -> Node:
        """Select aliases replaced by their expressions (not where a column is named so)."""
        if isinstance(node, ColumnRef):
            if node.name in self.aliases and node.name not in self.rewriter.columns:
                return self.aliases[node.name]
            return node
        if isinstance(node, FunCall):
            return FunCall(node.name, tuple(self._unalias(a) for a in node.args), node.position)
        return node

    def select(self, text: str) -> None:
        try:
            items = parse_select(text)
        except ExpressionError as e:
            raise QueryError.of(e, "$select") from e
        for n, item in enumerate(items):
            if item.expr is None:
                star = SODA_FIELDS if item.system else self.data
                for name in star:
                    self._add(name, ColumnRef(name, item.position), text)
                continue
            name = item.alias or _default_name(item.expr, n)
            self._add(name, item.expr, text)  # first: an unknown column is the first fault
            # A field's own name is a valid output name, in any script (``café``).
            if not _ALIAS.match(name) and name not in SODA_FIELDS and name not in self.data:
                raise QueryError(f"{name!r} is not a valid column alias", "$select")
        names = [s.name for s in self.selected]
        duplicates = sorted({x for x in names if names.count(x) > 1})
        if duplicates:
            raise QueryError(f"duplicate output column(s) {duplicates}; add AS aliases", "$select")

    def _add(self, name: str, node: Node, text: str) -> None:
        rewritten = self.rewrite("$select", text, node, aggregates=True)
        sql, kind = self.compile("$select", text, rewritten)
        self.selected.append(SelectedColumn(name, sql, kind))
        self.aliases.setdefault(name, node)
        self.checked.append(("$select", text, rewritten))

    def group(self, text: str) -> list[str]:
        try:
            items = parse_select(text)
        except ExpressionError as e:
            raise QueryError.of(e, "$group") from e
        out: list[str] = []
        for item in items:
            if item.expr is None or item.alias is not None:
                raise QueryError("list expressions to group by, without * or AS", "$group")
            rewritten = self.rewrite("$group", text, item.expr, aggregates=False)
            self.group_shapes.add(shape(rewritten))
            out.append(self.compile("$group", text, rewritten)[0])
        return out

    def condition(self, parameter: str, text: str) -> str:
        """A ``$where`` or ``$having``; rows (groups) whose condition errs are left out."""
        try:
            node = parse_expression(text)
        except ExpressionError as e:
            raise QueryError.of(e, parameter) from e
        having = parameter == "$having"
        rewritten = self.rewrite(parameter, text, node, aggregates=having)
        try:
            compiled = compile_node(text, rewritten, self.rewriter.all_columns())
        except ExpressionError as e:
            raise QueryError.of(e, parameter) from e
        if compiled.output_type is not SoqlType.CHECKBOX:
            raise QueryError(
                f"must be a true/false condition, not {compiled.output_type.value}", parameter
            )
        if having:
            self.checked.append((parameter, text, rewritten))
        return f"(COALESCE({compiled.value_sql}, FALSE) AND ({compiled.error_sql}) IS NULL)"

    def equality(self, key: str, value: str) -> str:
        """A simple filter ``column=value``: the value is read as the column's type."""
        column = self.rewriter.columns.get(key)
        if column is None:
            raise QueryError(f"no such column `{key}`", key, key=_KEYS["unknown_column"])
        text = f"{key}={value}"
        node = FunCall("op$=", (ColumnRef(key, 0), Lit("string", value, len(key) + 1)), 0)
        try:
            compiled = compile_node(text, node, self.rewriter.columns)
        except ExpressionError as e:
            raise QueryError(
                f"type mismatch: {value[:80]!r} is not a {column.soql_type.value} value, "
                f"the type of column `{key}`",
                key,
                key=_KEYS["type_mismatch"],
            ) from e
        return f"COALESCE({compiled.value_sql}, FALSE)"

    def search(self, text: str) -> str:
        """``$q``: every word must occur, case-insensitively, in some text column."""
        try:
            limits.check_text(text)  # held to the length limit of an expression
        except ExpressionError as e:
            raise QueryError.of(e, "$q") from e
        texts = [c.sql for c in self.data.values() if c.soql_type is SoqlType.TEXT]
        words = text.split()
        if not words:
            return "TRUE"
        if not texts:
            return "FALSE"
        haystack = f"lower(concat_ws(' ', {', '.join(texts)}))"
        return (
            "(" + " AND ".join(f"contains({haystack}, {sql_text(w.lower())})" for w in words) + ")"
        )

    def order(self, text: str) -> list[str]:
        try:
            items = parse_order(text)
        except ExpressionError as e:
            raise QueryError.of(e, "$order") from e
        out: list[str] = []
        for node, desc in items:
            rewritten = self.rewrite("$order", text, node, aggregates=True)
            self.checked.append(("$order", text, rewritten))
            if isinstance(rewritten, Lit):
                # A constant orders nothing; DuckDB refuses a text or boolean literal in
                # ORDER BY (a 500, found by fuzzing SoQL), so it is left out.
                self.compile("$order", text, rewritten)
                continue
            # :id is row-id order; by __sid itself (cheaper) unless the read is grouped.
            grouped = self.group_shapes or self.rewriter.aggregated
            is_id = isinstance(rewritten, ColumnRef) and rewritten.name == ID_FIELD and not grouped
            sql = SID if is_id else self.compile("$order", text, rewritten)[0]
            out.append(f"{sql} {'DESC NULLS FIRST' if desc else 'ASC NULLS LAST'}")
        return out

    def check_grouped(self) -> None:
        """In a grouped read, every column outside an aggregate must be grouped by."""
        for parameter, text, node in self.checked:
            loose = _ungrouped(node, self.group_shapes)
            if loose is not None:
                raise QueryError(
                    f"column `{loose.name}` is neither grouped nor aggregated; add it to "
                    f"$group or use it inside an aggregate such as count({loose.name}) "
                    f"(in {text[:80]!r})",
                    parameter,
                    key="query.soql.not-grouped",
                )


def _ungrouped(node: Node, group_shapes: set[str]) -> ColumnRef | None:
    """The first column reference outside the group expressions and aggregates."""
    if shape(node) in group_shapes or isinstance(node, Lit):
        return None
    if isinstance(node, ColumnRef):
        return None if node.name.startswith("#") else node
    for arg in node.args:
        found = _ungrouped(arg, group_shapes)
        if found is not None:
            return found
    return None


def _default_name(node: Node, n: int) -> str:
    if isinstance(node, ColumnRef):
        return node.name
    name = node.name.replace("$", "_") if isinstance(node, FunCall) else ""
    if isinstance(node, FunCall) and name.isidentifier():
        refs = [a.name.lstrip(":") for a in node.args if isinstance(a, ColumnRef)]
        return "_".join([name, *refs])
    return f"_expr{n}" if not isinstance(node, Lit) else f"_literal{n}"


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
