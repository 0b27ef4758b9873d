"""Compile a transform expression into a value SQL expression and an error SQL expression.

The two expressions run side by side over a whole input relation: ``value_sql`` is the
cell's value in the storage type of its SoQL type (NULL when the cell is in error), and
``error_sql`` is NULL or the JSON text of the cell's error. Nothing in either can raise
at runtime for any input data; everything that could (bad regexes, formats, time
zones) is checked here and reported as an :class:`ExpressionError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.transforms import binding, functions, limits, numbers
from dsmsyncd.server.transforms.errors import ExpressionError
from dsmsyncd.server.transforms.parser import (
    ColumnRef,
    FunCall,
    Lit,
    Node,
    parse_expression,
    to_json,
)
from dsmsyncd.server.transforms.registry import ALIASES, NOT_AVAILABLE, REGISTRY
from dsmsyncd.server.transforms.sqlgen import NULL, first_error, sql_text
from dsmsyncd.server.transforms.typecheck import Call, Signature, Typed, resolve


@dataclass(frozen=True)
class ColumnInput:
    """An input column as the compiler sees it: its SQL and its SoQL type."""

    sql: str  # SQL expression for the column in the input relation, e.g. '"c3"'
    soql_type: SoqlType  # TEXT for CSV input columns


@dataclass(frozen=True)
class CompileContext:
    """Facts about the source that some functions read."""

    source_created_at: datetime | None = None


@dataclass(frozen=True)
class CompiledExpression:
    value_sql: str
    error_sql: str  # 'NULL' when the expression can never fail
    output_type: SoqlType
    parsed_expr: dict[str, Any]
    referenced_columns: tuple[str, ...]


def compile_expression(
    expr: str, columns: Mapping[str, ColumnInput], context: CompileContext | None = None
) -> CompiledExpression:
    """Parse, type-check and translate one transform expression."""
    return compile_node(expr, parse_expression(expr), columns, context)


def compile_node(
    expr: str,
    node: Node,
    columns: Mapping[str, ColumnInput],
    context: CompileContext | None = None,
) -> CompiledExpression:
    """Compile an already-parsed node of `expr` (used for $select and $order items)."""
    compiler = _Compiler(expr, columns, context or CompileContext())
    typed = compiler.compile(node)
    output_type = typed.type
    value = typed.value
    if output_type is SoqlType.NULL:
        output_type = SoqlType.TEXT
        value = f"CAST({value} AS VARCHAR)"
    return CompiledExpression(
        value_sql=value,
        error_sql=typed.error,
        output_type=output_type,
        parsed_expr=to_json(node),
        referenced_columns=tuple(compiler.referenced),
    )


class _Compiler:
    def __init__(self, source: str, columns: Mapping[str, ColumnInput], context: CompileContext):
        self.source = source
        self.columns = columns
        self.context = context
        self.referenced: list[str] = []

    def compile(self, node: Node) -> Typed:
        if isinstance(node, Lit):
            return self._literal(node)
        if isinstance(node, ColumnRef):
            return self._column(node)
        return self._call(node)

    def _literal(self, node: Lit) -> Typed:
        if node.kind == "string":
            assert isinstance(node.value, str)
            return Typed(sql_text(node.value), NULL, SoqlType.TEXT, node, node.value, True)
        if node.kind == "number":
            sql = numbers.literal(str(node.value))
            if sql is None:
                raise ExpressionError(
                    f"The number {node.value} is out of range: {numbers.RANGE_TEXT}",
                    node.position,
                    "number_out_of_range",
                    self.source,
                )
            return Typed(sql, NULL, SoqlType.NUMBER, node, node.value, True)
        if node.kind == "boolean":
            return Typed(
                "TRUE" if node.value else "FALSE", NULL, SoqlType.CHECKBOX, node, node.value, True
            )
        return Typed("NULL", NULL, SoqlType.NULL, node, None, True)

    def _column(self, node: ColumnRef) -> Typed:
        column = self.columns.get(node.name)
        if column is None:
            close = difflib.get_close_matches(node.name, list(self.columns), n=1)
            hint = f"; did you mean `{close[0]}`?" if close else ""
            known = ", ".join(f"`{c}`" for c in list(self.columns)[:20])
            raise ExpressionError(
                f"There is no input column named `{node.name}`{hint} (known columns: {known})",
                node.position,
                "unknown_column",
                self.source,
            )
        if node.name not in self.referenced:
            self.referenced.append(node.name)
        return Typed(column.sql, NULL, column.soql_type, node)

    def _call(self, node: FunCall) -> Typed:
        name = ALIASES.get(node.name, node.name)
        if name in NOT_AVAILABLE:
            raise ExpressionError(
                f"`{name}` is not available on the local server: it needs {NOT_AVAILABLE[name]}",
                node.position,
                "not_available",
                self.source,
            )
        sigs = REGISTRY.get(name)
        if sigs is None and name in functions.DOCUMENTED:
            raise ExpressionError(
                f"`{name}` is a documented transform function that the local server "
                "does not implement yet",
                node.position,
                "not_implemented",
                self.source,
            )
        if sigs is None:
            raise self._unknown(node, name)
        args = [self.compile(a) for a in node.args]
        sig, result_type, args = resolve(name, sigs, args, node, self.source)
        typed = self._build(name, sig, result_type, args, node)
        if binding.should_bind(args, typed):
            fields, refs = binding.bind(args)
            typed = binding.pack(fields, self._build(name, sig, result_type, refs, node))
        limits.check_sql(binding.size(typed), node.position, self.source)
        return typed

    def _build(
        self, name: str, sig: Signature, result_type: SoqlType, args: list[Typed], node: FunCall
    ) -> Typed:
        """One call's SQL from its arguments' SQL: the builder, then the argument errors."""
        call = Call(name, args, result_type, node, self.source, self.context)
        value, own_error = sig.builder(call)
        if sig.lazy:
            return Typed(value, own_error, result_type, node)
        arg_error = first_error([a.error for a in args])
        if arg_error != NULL and not sig.strict:
            value = f"(CASE WHEN {arg_error} IS NULL THEN {value} END)"
        if result_type is not SoqlType.NULL and value == NULL:
            value = f"CAST(NULL AS {duckdb_type(result_type)})"
        return Typed(value, first_error([arg_error, own_error]), result_type, node)

    def _unknown(self, node: FunCall, name: str) -> ExpressionError:
        if name.startswith("cast$"):
            message = f"Unknown type {name[5:]!r} in a :: cast; use text, number, json, checkbox…"
        elif name.startswith("op$."):
            members = sorted(n[4:] for n in REGISTRY if n.startswith("op$."))
            message = f"Unknown member .{name[4:]}; members are {', '.join(members)}"
        else:
            others = [n for n in functions.all_names() if n != name]
            close = difflib.get_close_matches(name, others, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            message = f"Unknown function {name}{hint}"
        return ExpressionError(message, node.position, "unknown_function", self.source)
