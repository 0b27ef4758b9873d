"""Tokens of the transform language, each with its offset for error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from dsmsyncd.server.fields import is_digits
from dsmsyncd.server.transforms.errors import ExpressionError

TokenKind = Literal["ident", "column", "string", "number", "op", "eof"]

KEYWORDS = frozenset(
    {"and", "or", "not", "is", "null", "true", "false", "between", "in", "like", "as"}
)

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
# A bare name is a letter or ``_``, then letters, digits and ``_``, in any script: the
# server names fields after their headers the same way (``café`` stays ``café``), so a
# query can name them without backticks. ``ch.isalpha() or ch == "_"`` starts exactly
# these; an ASCII-only pattern left ``é`` started and unmatched, a 500 (found by the
# OpenAPI fuzz test).
_BARE = re.compile(r"[^\W\d_]\w*|_\w*")
_OPERATORS: tuple[str, ...] = ("::", "||", "==", "!=", "<>", "<=", ">=", "+", "-", "*", "/")
_OPERATORS += ("%", "^", "=", "<", ">", "(", ")", ",", "[", "]", ".")
# Tokens after which a `.` is member access rather than the start of a number like `.5`.
_VALUE_ENDS = frozenset({"ident", "column", "string", "number"})


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str  # identifier/column name, unescaped string, number text or operator
    position: int

    def is_keyword(self, word: str) -> bool:
        return self.kind == "ident" and self.text.lower() == word

    def is_op(self, op: str) -> bool:
        return self.kind == "op" and self.text == op


def tokenize(source: str) -> list[Token]:
    """Split an expression into tokens; raises ExpressionError(reason="syntax")."""
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        prev_ends_value = bool(tokens) and (
            tokens[-1].kind in _VALUE_ENDS or tokens[-1].text in (")", "]")
        )
        if ch in "'\"":
            start = i
            text, i = _read_quoted(source, i, ch)
            tokens.append(Token("string", text, start))
            continue
        if ch == "`":
            end = source.find("`", i + 1)
            if end < 0:
                raise ExpressionError(
                    "Unterminated column name: add the closing backtick (`)", i, "syntax", source
                )
            tokens.append(Token("column", source[i + 1 : end], i))
            i = end + 1
            continue
        if is_digits(ch) or (
            ch == "." and not prev_ends_value and is_digits(source[i + 1 : i + 2])
        ):
            m = _NUMBER.match(source, i)
            assert m is not None
            tokens.append(Token("number", m.group(0), i))
            i = m.end()
            continue
        if ch == ":" and source[i + 1 : i + 2] == "*":
            tokens.append(Token("op", ":*", i))  # SODA's "every system field" in $select
            i += 2
            continue
        if ch == ":" and _BARE.match(source, i + 1):
            m = _BARE.match(source, i + 1)  # a SODA system field such as :id
            assert m is not None
            tokens.append(Token("ident", ":" + m.group(0), i))
            i = m.end()
            continue
        if ch.isalpha() or ch == "_":
            m = _BARE.match(source, i)
            assert m is not None
            tokens.append(Token("ident", m.group(0), i))
            i = m.end()
            continue
        op = next((o for o in _OPERATORS if source.startswith(o, i)), None)
        if op is None:
            raise ExpressionError(
                f"Unexpected character {ch!r}: it is not part of the transform language",
                i,
                "syntax",
                source,
            )
        tokens.append(Token("op", op, i))
        i += len(op)
    tokens.append(Token("eof", "", n))
    return tokens


def _read_quoted(source: str, start: int, quote: str) -> tuple[str, int]:
    """A quoted literal with doubled-quote escapes; returns (text, index after it)."""
    parts: list[str] = []
    i = start + 1
    while True:
        end = source.find(quote, i)
        if end < 0:
            raise ExpressionError(
                f"Unterminated text literal: add the closing {quote}", start, "syntax", source
            )
        parts.append(source[i:end])
        if source.startswith(quote * 2, end):
            parts.append(quote)
            i = end + 2
            continue
        return "".join(parts), end + 1
