"""The size limits of one expression, in the one place they are defined.

The same compiler serves SODA reads (``$select``, ``$where``, ``$order``) that anyone
may send and the transforms of schemas and import configs, so an expression is
bounded before it can cost anything: its text, its nesting depth (the parser and the
compiler recurse once per level), its node count, and the SQL it compiles to (DuckDB
parses and binds that SQL in memory before it can be interrupted). The compiler keeps
SQL linear in the expression (``binding.py``), so a legitimate expression stays far
below ``MAX_SQL_CHARS``; the SQL limits are the backstop, and they bound the memory and
time DuckDB spends parsing and binding a statement before it reads a row (about 2-4 µs
per character, measured).

A limit that is hit raises :class:`ExpressionLimitError`, whose ``key`` names the limit
for the HTTP error body and whose ``limit`` is the value, so a client can tell which
limit it hit and by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dsmsyncd.server.transforms.errors import ExpressionError

MAX_EXPRESSION_CHARS = 20_000
MAX_EXPRESSION_DEPTH = 100
MAX_EXPRESSION_NODES = 4_000
MAX_SQL_CHARS = 400_000
# All expressions of one statement together: a SODA read, or an output schema's columns.
MAX_STATEMENT_SQL_CHARS = 2_000_000

LimitReason = Literal["too_long", "too_deep", "too_large", "sql_too_large", "statement_too_large"]

_SIMPLIFY = "simplify it or split it into several columns"


@dataclass(frozen=True)
class _Limit:
    key: str  # the HTTP error key
    value: int
    message: str  # formatted with ``limit`` and the raising site's details


_LIMITS: dict[LimitReason, _Limit] = {
    "too_long": _Limit(
        "expression_too_long",
        MAX_EXPRESSION_CHARS,
        "The expression is {length} characters long; the limit is {limit} characters. Shorten it",
    ),
    "too_deep": _Limit(
        "expression_too_deep",
        MAX_EXPRESSION_DEPTH,
        "The expression is nested more than {limit} levels deep; " + _SIMPLIFY,
    ),
    "too_large": _Limit(
        "expression_too_large",
        MAX_EXPRESSION_NODES,
        "The expression has more than {limit} values, names and operations; " + _SIMPLIFY,
    ),
    "sql_too_large": _Limit(
        "expression_sql_too_large",
        MAX_SQL_CHARS,
        "The expression compiles to more than {limit} characters of SQL; " + _SIMPLIFY,
    ),
    "statement_too_large": _Limit(
        "statement_sql_too_large",
        MAX_STATEMENT_SQL_CHARS,
        "{what} compile to more than {limit} characters of SQL together; {fix}",
    ),
}


class ExpressionLimitError(ExpressionError):
    """An expression over one of the limits above; ``key`` and ``limit`` say which."""

    def __init__(
        self, message: str, position: int, reason: LimitReason, limit: int, source: str = ""
    ) -> None:
        super().__init__(message, position, reason, source)
        self.limit_reason: LimitReason = reason
        self.limit = limit

    @property
    def key(self) -> str:
        return _LIMITS[self.limit_reason].key

    def with_source(self, source: str) -> ExpressionLimitError:
        return ExpressionLimitError(
            self.message, self.position, self.limit_reason, self.limit, source
        )


def _over(
    reason: LimitReason, position: int, source: str = "", **details: object
) -> ExpressionLimitError:
    limit = _LIMITS[reason]
    message = limit.message.format(limit=limit.value, **details)
    return ExpressionLimitError(message, position, reason, limit.value, source)


def check_text(source: str) -> None:
    """Refuse an expression text longer than ``MAX_EXPRESSION_CHARS`` before parsing it."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise _over("too_long", 0, source, length=len(source))


def too_deep(position: int, source: str) -> ExpressionLimitError:
    return _over("too_deep", position, source)


def too_many_nodes(position: int, source: str) -> ExpressionLimitError:
    return _over("too_large", position, source)


def check_sql(size: int, position: int, source: str) -> None:
    """Refuse an expression whose generated SQL is longer than ``MAX_SQL_CHARS``."""
    if size > MAX_SQL_CHARS:
        raise _over("sql_too_large", position, source)


def statement_too_large(what: str, fix: str) -> ExpressionLimitError:
    """Several expressions of one statement over ``MAX_STATEMENT_SQL_CHARS`` together."""
    return _over("statement_too_large", 0, what=what, fix=fix)
