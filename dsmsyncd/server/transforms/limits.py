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

from typing import Literal

from dsmsyncd.server.transforms.errors import ExpressionError

MAX_EXPRESSION_CHARS = 20_000
MAX_EXPRESSION_DEPTH = 100
MAX_EXPRESSION_NODES = 4_000
MAX_SQL_CHARS = 400_000
# All expressions of one statement together: a SODA read, or an output schema's columns.
MAX_STATEMENT_SQL_CHARS = 2_000_000

LimitReason = Literal["too_long", "too_deep", "too_large", "sql_too_large", "statement_too_large"]

_KEYS: dict[LimitReason, str] = {
    "too_long": "expression_too_long",
    "too_deep": "expression_too_deep",
    "too_large": "expression_too_large",
    "sql_too_large": "expression_sql_too_large",
    "statement_too_large": "statement_sql_too_large",
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
        return _KEYS[self.limit_reason]

    def with_source(self, source: str) -> ExpressionLimitError:
        return ExpressionLimitError(
            self.message, self.position, self.limit_reason, self.limit, source
        )


def check_text(source: str) -> None:
    """Refuse an expression text longer than ``MAX_EXPRESSION_CHARS`` before parsing it."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionLimitError(
            f"The expression is {len(source)} characters long; the limit is "
            f"{MAX_EXPRESSION_CHARS} characters. Shorten it",
            0,
            "too_long",
            MAX_EXPRESSION_CHARS,
            source,
        )


def too_deep(position: int, source: str) -> ExpressionLimitError:
    return ExpressionLimitError(
        f"The expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep; "
        "simplify it or split it into several columns",
        position,
        "too_deep",
        MAX_EXPRESSION_DEPTH,
        source,
    )


def too_many_nodes(position: int, source: str) -> ExpressionLimitError:
    return ExpressionLimitError(
        f"The expression has more than {MAX_EXPRESSION_NODES} values, names and operations; "
        "simplify it or split it into several columns",
        position,
        "too_large",
        MAX_EXPRESSION_NODES,
        source,
    )


def check_sql(size: int, position: int, source: str) -> None:
    """Refuse an expression whose generated SQL is longer than ``MAX_SQL_CHARS``."""
    if size > MAX_SQL_CHARS:
        raise ExpressionLimitError(
            f"The expression compiles to more than {MAX_SQL_CHARS} characters of SQL; "
            "simplify it or split it into several columns",
            position,
            "sql_too_large",
            MAX_SQL_CHARS,
            source,
        )


def statement_too_large(what: str, fix: str) -> ExpressionLimitError:
    """Several expressions of one statement over ``MAX_STATEMENT_SQL_CHARS`` together."""
    return ExpressionLimitError(
        f"{what} compile to more than {MAX_STATEMENT_SQL_CHARS} characters of SQL together; {fix}",
        0,
        "statement_too_large",
        MAX_STATEMENT_SQL_CHARS,
    )
