"""Number arithmetic in SQL: exact decimals, and a cell error wherever they cannot be.

A SoQL number is stored as ``NUMBER_SQL_TYPE`` (``DECIMAL(38,18)``, see
``soql_types``). DuckDB raises on a decimal overflow and its ``/``, ``pow`` and
``sqrt`` answer doubles, so every number-producing builder goes through here:

* Conversions (text, doubles, integers) and the operators either give the exact
  decimal or a ``number_out_of_range`` cell error; compiled SQL never raises.
* ``+``, ``-``, ``%`` and negation are exact. ``*`` is exact up to the 18th decimal
  (the product of the fractional parts is the only term rounded).
* ``/`` is correctly rounded to 18 decimals: the double quotient, corrected by the
  exact remainder (``a - q*b``) divided by ``b``, so ``1/3`` is ``0.333333333333333333``
  and ``0.3/0.1`` is ``3``.
* Results that only a double can compute (``^`` with any exponent, random numbers)
  are rounded to 15 significant digits, the digits a double holds reliably, so
  ``1.1 ^ 2`` is ``1.21``, not ``1.2100000000000002``.
"""

from __future__ import annotations

import decimal
import re

from dsmsyncd.server.soql_types import (
    NUMBER_INTEGER_DIGITS,
    NUMBER_SCALE,
    NUMBER_SQL_TYPE,
    SoqlType,
    format_number,
)
from dsmsyncd.server.transforms.sqlgen import (
    blank_cell,
    conversion_failed,
    error_object,
    fail_when,
    sql_text,
)

NUM = NUMBER_SQL_TYPE
OUT_OF_RANGE = "number_out_of_range"
RANGE_TEXT = (
    f"the local server keeps {NUMBER_INTEGER_DIGITS} digits before the point, {NUMBER_SCALE} after"
)
_LIMIT = decimal.Decimal(10) ** NUMBER_INTEGER_DIGITS
_QUANTUM = decimal.Decimal(1).scaleb(-NUMBER_SCALE)
# A text this short without an exponent cannot have more than NUMBER_SCALE decimals.
_SHORT_TEXT = NUMBER_SCALE + 1
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_DECIMAL_LITERAL = re.compile(r"[0-9]*\.?[0-9]*(?:[eE][-+]?[0-9]+)?")


def fits(value: decimal.Decimal) -> bool:
    """Whether a number is stored unchanged: in range and at most 18 decimals."""
    if not value.is_finite() or abs(value) >= _LIMIT:
        return False
    return value == value.quantize(_QUANTUM, context=decimal.Context(prec=60))


def literal(text: str) -> str | None:
    """SQL for a number literal of an expression, or None when it does not fit."""
    if not _DECIMAL_LITERAL.fullmatch(text):
        return None
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None
    if not fits(value):
        return None
    return f"CAST({sql_text(format_number(value))} AS {NUM})"


def out_of_range(english_sql: str, value_sql: str | None = None) -> str:
    """The ``number_out_of_range`` error object (english and value given as SQL)."""
    data = {"value": value_sql} if value_sql is not None else {}
    return error_object(OUT_OF_RANGE, english_sql, data)


def text_fits_sql(x: str) -> str:
    """SQL: whether text ``x`` reads as a number that is stored unchanged."""
    value = f"TRY_CAST({x} AS {NUM})"
    return (
        f"(CASE WHEN {value} IS NULL THEN FALSE "
        f"WHEN length({x}) <= {_SHORT_TEXT} AND NOT ({x} ILIKE '%e%') THEN TRUE "
        f"ELSE {_decimals_sql(x)} <= {NUMBER_SCALE} END)"
    )


def text_surely_fits(text: str) -> bool:
    """Whether ``text_fits_sql`` is sure to be true for ``text``, without asking DuckDB.

    True only for plain decimals (``-12``, ``3.25``) no longer than ``_SHORT_TEXT``:
    their integer part has fewer digits than the range allows, their fraction fewer
    than the scale, so the cast succeeds and the length test answers. False means
    "not sure", never "does not fit".
    """
    return len(text) <= min(_SHORT_TEXT, NUMBER_INTEGER_DIGITS) and bool(
        _PLAIN_DECIMAL.fullmatch(text)
    )


def _decimals_sql(x: str) -> str:
    """SQL: how many decimals the number written in ``x`` has (trailing zeros aside)."""
    fraction = f"length(regexp_extract({x}, '\\.([0-9]*[1-9])0*\\s*([eE][-+]?[0-9]+)?\\s*$', 1))"
    exponent = f"coalesce(TRY_CAST(regexp_extract({x}, '[eE]([-+]?[0-9]+)\\s*$', 1) AS INTEGER), 0)"
    return f"({fraction} - {exponent})"


def from_text(x: str) -> tuple[str, str]:
    """``to_number`` of text: the exact value, or why not (blank text is null).

    Blank text gives null and no error whether it is ``''`` or null, so a bare input
    column is read as its raw cell, without the ``NULLIF`` (see ``blank_cell``).
    """
    x = blank_cell(x) or x
    value = f"(CASE WHEN {text_fits_sql(x)} THEN TRY_CAST({x} AS {NUM}) END)"
    english = f"'Unable to convert \"' || {x} || '\" to number: ' || {sql_text(RANGE_TEXT)}"
    error = (
        f"(CASE WHEN {value} IS NOT NULL OR coalesce(trim({x}), '') = '' THEN NULL "
        f"WHEN isfinite(TRY_CAST({x} AS DOUBLE)) THEN {out_of_range(english, x)} "
        f"ELSE {conversion_failed(x, SoqlType.TEXT, SoqlType.NUMBER)} END)"
    )
    return value, error


def from_integer(sql: str) -> str:
    """An integer-valued SQL expression (a length, a date part) as a number."""
    return f"CAST({sql} AS {NUM})"


def from_double(d: str, what: str) -> tuple[str, str]:
    """A double result rounded to 15 significant digits; out of range is an error."""
    value = f"TRY_CAST(printf('%.15g', {d}) AS {NUM})"
    english = sql_text(f"The result of {what} is out of range: {RANGE_TEXT}")
    return value, fail_when(f"{d} IS NOT NULL AND {value} IS NULL", out_of_range(english))


def _checked(value: str, operands: list[str], what: str) -> tuple[str, str]:
    """``try(value)``, with an error when it is null although every operand is not."""
    tried = f"try({value})"
    present = " AND ".join(f"{o} IS NOT NULL" for o in operands)
    english = sql_text(f"The result of {what} is out of range: {RANGE_TEXT}")
    return tried, fail_when(f"{present} AND {tried} IS NULL", out_of_range(english))


def add(a: str, b: str, op: str) -> tuple[str, str]:
    return _checked(f"({a} {op} {b})", [a, b], op)


def negate(a: str) -> str:
    return f"(- {a})"  # the range is symmetric: never overflows


def _split_product(a: str, b: str) -> tuple[str, str]:
    """(exact part at scale 18, fractional product at scale 36) of ``a * b``."""
    ai, af = f"trunc({a})", f"({a} - trunc({a}))"
    bi, bf = f"trunc({b})", f"({b} - trunc({b}))"
    return f"({ai} * {b} + {af} * {bi})", f"({af} * {bf})"


def multiply(a: str, b: str) -> tuple[str, str]:
    whole, fraction = _split_product(a, b)
    return _checked(f"({whole} + CAST({fraction} AS {NUM}))", [a, b], "*")


def divide(a: str, b: str) -> tuple[str, str]:
    """``a / b`` for ``b <> 0``, correctly rounded to the scale (see the module doc).

    The double estimate is bound once (a lambda parameter): it is used a dozen times.
    """
    q0 = f"TRY_CAST(CAST({a} AS DOUBLE) / CAST({b} AS DOUBLE) AS {NUM})"
    q = "__quotient"
    whole, fraction = _split_product(q, b)
    rest = f"try({a} - {whole})"  # exact remainder, less its scale-36 part
    near = f"try(CAST(CAST({rest} AS DECIMAL(38,36)) - {fraction} AS DOUBLE))"
    remainder = f"coalesce({near}, CAST({rest} AS DOUBLE))"
    correction = f"TRY_CAST({remainder} / CAST({b} AS DOUBLE) AS {NUM})"
    value = f"list_transform([{q0}], lambda {q}: {q} + {correction})[1]"
    return _checked(value, [a, b], "/")


def modulo(a: str, b: str) -> tuple[str, str]:
    return _checked(f"({a} % {b})", [a, b], "%")
