"""The one exception the transform compiler raises, with where and why.

DSMAPI reports a bad transform as a failed output column, and a user fixes it in an
editor, so every error carries the character offset and the line and column of the
fault, plus a short machine ``reason`` the HTTP layer can put in an error body.
"""

from __future__ import annotations

from typing import Literal

Reason = Literal[
    "syntax",
    "unknown_column",
    "unknown_function",
    "type_mismatch",
    "not_available",
    "not_implemented",
    "number_out_of_range",
    # Over a limit of limits.py (raised as its ExpressionLimitError).
    "too_long",
    "too_deep",
    "too_large",
    "sql_too_large",
    "statement_too_large",
]


class ExpressionError(ValueError):
    """A transform expression that cannot be compiled: syntax, names or types."""

    def __init__(self, message: str, position: int, reason: Reason, source: str = "") -> None:
        self.message = message
        self.position = position
        self.reason: Reason = reason
        before = source[:position]
        self.line = before.count("\n") + 1
        self.column = position - (before.rfind("\n") + 1) + 1
        super().__init__(f"{message} (line {self.line}, column {self.column})")

    def with_source(self, source: str) -> ExpressionError:
        """The same error with line and column computed against the full expression text."""
        return ExpressionError(self.message, self.position, self.reason, source)
