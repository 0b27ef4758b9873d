"""Operators, logic, control flow and the scalar casts (text, number, checkbox, json).

Builders return ``(value_sql, own_error_sql)``; the compiler adds the arguments' errors
in front (first error wins). ``lazy`` builders (case, coalesce, forgive) return the
complete error because they decide which arguments' errors matter.
"""

from __future__ import annotations

from dsmsyncd.server.soql_types import NUMBER_INTEGER_DIGITS, NUMBER_SCALE, SoqlType
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.parser import FunCall, Lit, Node
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import (
    NULL,
    blank_cell,
    conversion_failed,
    error_object,
    fail_when,
    plain_error,
    sql_text,
    text_of,
)
from dsmsyncd.server.transforms.typecheck import Call

T, N, B = SoqlType.TEXT, SoqlType.NUMBER, SoqlType.CHECKBOX
FT, D, J = SoqlType.CALENDAR_DATE, SoqlType.DATE, SoqlType.JSON


@define("op$+", (N, N), N)
@define("op$-", (N, N), N)
def _add(c: Call) -> tuple[str, str]:
    return numbers.add(c.args[0].value, c.args[1].value, c.name[3:])


@define("op$*", (N, N), N)
def _multiply(c: Call) -> tuple[str, str]:
    return numbers.multiply(c.args[0].value, c.args[1].value)


@define("op$/", (N, N), N)
@define("op$%", (N, N), N)
def _divide(c: Call) -> tuple[str, str]:
    a, b = c.args[0].value, c.args[1].value
    build = numbers.divide if c.name == "op$/" else numbers.modulo
    value, overflow = build(a, b)
    error = plain_error("divide_by_zero", "Unable to divide by zero")
    by_zero = fail_when(f"{b} = 0", error)
    return f"(CASE WHEN {b} <> 0 THEN {value} END)", f"coalesce({by_zero}, {overflow})"


@define("op$^", (N, N), N)
def _power(c: Call) -> tuple[str, str]:
    d = f"pow(CAST({c.args[0].value} AS DOUBLE), CAST({c.args[1].value} AS DOUBLE))"
    return numbers.from_double(d, "^")


@define("op$neg", (N,), N)
def _negate(c: Call) -> tuple[str, str]:
    return numbers.negate(c.args[0].value), NULL


@define("op$pos", (N,), N)
def _identity(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define("op$||", ("a", "b"), T)
def _concat(c: Call) -> tuple[str, str]:
    a, b = c.args
    return f"({text_of(a.value, a.type)} || {text_of(b.value, b.type)})", NULL


def _comparison(name: str, sql_op: str) -> None:
    @define(name, ("a", "a"), B)
    def build(c: Call) -> tuple[str, str]:
        return f"({c.args[0].value} {sql_op} {c.args[1].value})", NULL


for _name, _sql in (("=", "="), ("!=", "<>"), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")):
    _comparison(f"op${_name}", _sql)


@define("op$and", (B, B), B, strict=False)
@define("op$or", (B, B), B, strict=False)
def _logic(c: Call) -> tuple[str, str]:
    op = "AND" if c.name == "op$and" else "OR"
    return f"({c.args[0].value} {op} {c.args[1].value})", NULL


@define("op$not", (B,), B)
def _not(c: Call) -> tuple[str, str]:
    return f"(NOT {c.args[0].value})", NULL


@define("#IS_NULL", ("a",), B, strict=False)
@define("#IS_NOT_NULL", ("a",), B, strict=False)
def _is_null(c: Call) -> tuple[str, str]:
    word = "IS NOT NULL" if c.name == "#IS_NOT_NULL" else "IS NULL"
    return f"({c.args[0].value} {word})", NULL


@define("#BETWEEN", ("a", "a", "a"), B)
@define("#NOT_BETWEEN", ("a", "a", "a"), B)
def _between(c: Call) -> tuple[str, str]:
    x, lo, hi = (a.value for a in c.args)
    neg = "NOT " if c.name.startswith("#NOT") else ""
    return f"({x} {neg}BETWEEN {lo} AND {hi})", NULL


@define("#IN", ("a", "a"), B, repeat=1, strict=False)
@define("#NOT_IN", ("a", "a"), B, repeat=1, strict=False)
def _in(c: Call) -> tuple[str, str]:
    neg = "NOT " if c.name.startswith("#NOT") else ""
    items = ", ".join(a.value for a in c.args[1:])
    return f"({c.args[0].value} {neg}IN ({items}))", NULL


@define("#LIKE", (T, T), B)
@define("#NOT_LIKE", (T, T), B)
def _like(c: Call) -> tuple[str, str]:
    neg = "NOT " if c.name.startswith("#NOT") else ""
    return f"({c.args[0].value} {neg}LIKE {c.args[1].value})", NULL


@define("case", (B, "a"), "a", repeat=2, lazy=True, strict=False)
def _case(c: Call) -> tuple[str, str]:
    pairs = list(zip(c.args[0::2], c.args[1::2], strict=True))
    value = " ".join(f"WHEN {p.value} THEN {v.value}" for p, v in pairs)
    errors: list[str] = []
    for p, v in pairs:
        if p.error != NULL:
            errors.append(f"WHEN {p.error} IS NOT NULL THEN {p.error}")
        if v.error != NULL:
            errors.append(f"WHEN {p.value} THEN {v.error}")
        else:
            errors.append(f"WHEN {p.value} THEN NULL")
    has_error = any(p.error != NULL or v.error != NULL for p, v in pairs)
    error = f"(CASE {' '.join(errors)} END)" if has_error else NULL
    return f"(CASE {value} END)", error


@define("coalesce", ("a",), "a", repeat=1, lazy=True, strict=False)
def _coalesce(c: Call) -> tuple[str, str]:
    value = f"coalesce({', '.join(a.value for a in c.args)})"
    if all(a.error == NULL for a in c.args):
        return value, NULL
    branches: list[str] = []
    for a in c.args:
        if a.error != NULL:
            branches.append(f"WHEN {a.error} IS NOT NULL THEN {a.error}")
        branches.append(f"WHEN {a.value} IS NOT NULL THEN NULL")
    error = f"(CASE {' '.join(branches)} END)"
    return f"(CASE WHEN {error} IS NULL THEN {value} END)", error


@define("greatest", ("a",), "a", repeat=1, strict=False)
@define("least", ("a",), "a", repeat=1, strict=False)
def _extreme(c: Call) -> tuple[str, str]:
    return f"{c.name}({', '.join(a.value for a in c.args)})", NULL


@define("error", (T,), "a")
def _error(c: Call) -> tuple[str, str]:
    message = c.args[0].value
    return NULL, error_object("user_error", f"coalesce({message}, 'error')", {})


@define("forgive", ("a",), "a", lazy=True, strict=False)
@define("forgive", ("a", "a"), "a", lazy=True, strict=False)
def _forgive(c: Call) -> tuple[str, str]:
    x = c.args[0]
    default = c.args[1] if len(c.args) > 1 else None
    if x.error == NULL:
        return x.value, NULL
    fallback = default.value if default else NULL
    value = f"(CASE WHEN {x.error} IS NULL THEN {x.value} ELSE {fallback} END)"
    error = NULL
    if default is not None and default.error != NULL:
        error = fail_when(f"{x.error} IS NOT NULL", default.error)
    return value, error


_ANY = frozenset(SoqlType) - {SoqlType.NULL}


@define("to_text", (_ANY,), T)
def _to_text(c: Call) -> tuple[str, str]:
    x = c.args[0]
    if x.type is J:
        return (
            f"(CASE WHEN json_type({x.value}) = 'VARCHAR' THEN {x.value}->>'$' ELSE {x.value} END)",
            NULL,
        )
    return text_of(x.value, x.type), NULL


@define("to_number", (T,), N)
@define("to_number", (T, T), N, note="the format argument is accepted and ignored")
def _to_number_text(c: Call) -> tuple[str, str]:
    return numbers.from_text(c.args[0].value)


@define("to_number", (N,), N)
def _to_number_same(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define("to_number", (B,), N)
def _to_number_checkbox(c: Call) -> tuple[str, str]:
    return numbers.from_integer(f"CAST({c.args[0].value} AS INTEGER)"), NULL


_TRUE = "('true', '1', 't', 'yes', 'y')"
_FALSE = "('false', '0', 'f', 'no', 'n')"


def _bool_from_text(x: str) -> tuple[str, str]:
    x = blank_cell(x) or x  # '' is neither word and no error, as null is
    word = f"lower(trim({x}))"
    value = f"(CASE WHEN {word} IN {_TRUE} THEN TRUE WHEN {word} IN {_FALSE} THEN FALSE END)"
    bad = f"{word} NOT IN {_TRUE[:-1]}, {_FALSE[1:-1]}, '')"
    return value, fail_when(bad, conversion_failed(x, T, B))


@define("to_boolean", (T,), B)
@define("to_checkbox", (T,), B)
def _to_bool_text(c: Call) -> tuple[str, str]:
    return _bool_from_text(c.args[0].value)


@define("to_boolean", (B,), B)
@define("to_checkbox", (B,), B)
def _to_bool_same(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define("to_checkbox", (N,), B)
def _to_bool_number(c: Call) -> tuple[str, str]:
    return f"({c.args[0].value} <> 0)", NULL


@define("to_json", (T,), J)
def _to_json_text(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    value = f"(CASE WHEN json_valid({x}) THEN CAST(json({x}) AS VARCHAR) END)"
    bad = f"trim({x}) <> '' AND NOT json_valid({x})"
    return value, fail_when(bad, conversion_failed(x, T, J))


@define("to_json", (J,), J)
def _to_json_same(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define("to_json", (frozenset({N, B}),), J)
def _to_json_scalar(c: Call) -> tuple[str, str]:
    x = c.args[0]
    return f"CAST(to_json({x.value}) AS VARCHAR)", NULL


@define("round", (N,), N)
@define("round", (N, N), N)
def _round(c: Call) -> tuple[str, str]:
    """Round half away from zero; negative precision rounds left of the point."""
    x = c.args[0].value
    if len(c.args) == 1:
        return numbers.from_integer(f"round({x})"), NULL
    constant = _constant_integer(c.args[1].node)
    if constant is not None:
        n = max(-NUMBER_INTEGER_DIGITS, min(constant, NUMBER_SCALE))
        return f"CAST(round({x}, {n}) AS {numbers.NUM})", NULL
    # DuckDB rounds a decimal only to a constant precision: one branch per precision.
    digits = f"TRY_CAST({c.args[1].value} AS INTEGER)"
    branches = " ".join(
        f"WHEN {n} THEN CAST(round({x}, {n}) AS {numbers.NUM})"
        for n in range(-NUMBER_INTEGER_DIGITS, NUMBER_SCALE + 1)
    )
    rest = f"WHEN {digits} > {NUMBER_SCALE} THEN {x} ELSE CAST(0 AS {numbers.NUM})"
    return (
        f"(CASE WHEN {digits} IS NULL THEN NULL ELSE (CASE {digits} {branches} {rest} END) END)",
        NULL,
    )


def _constant_integer(node: Node) -> int | None:
    """The value of an integer literal, or of a negated one (``-2``)."""
    sign = 1
    if isinstance(node, FunCall) and node.name == "op$neg" and len(node.args) == 1:
        sign, node = -1, node.args[0]
    if isinstance(node, Lit) and node.kind == "number" and str(node.value).isdigit():
        return sign * int(str(node.value))
    return None


@define("abs", (N,), N)
def _abs(c: Call) -> tuple[str, str]:
    return f"abs({c.args[0].value})", NULL


@define("random_number_between", (N, N), N)
def _random(c: Call) -> tuple[str, str]:
    lo, hi = (f"CAST({a.value} AS DOUBLE)" for a in c.args)
    return numbers.from_double(f"({lo} + random() * ({hi} - {lo}))", "random_number_between")


@define("source_created_at", (), D)
def _source_created_at(c: Call) -> tuple[str, str]:
    when = getattr(c.context, "source_created_at", None)
    if when is None:
        return "CAST(NULL AS TIMESTAMPTZ)", NULL
    return f"CAST({sql_text(when.isoformat())} AS TIMESTAMPTZ)", NULL
