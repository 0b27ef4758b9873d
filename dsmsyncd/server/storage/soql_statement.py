"""``$query``: a whole SoQL statement, split into the parameters it stands for.

``SELECT … WHERE … GROUP BY … HAVING … ORDER BY … LIMIT … OFFSET … SEARCH '…'`` (any
clause may be left out) becomes ``{"$select": …, "$where": …, "$group": …}``, which
the same translation as separate parameters then reads (dev.socrata.com, "Queries":
each parameter has its ``$query`` clause). The statement is split on clause keywords
found by the transform lexer outside parentheses, so a keyword inside a text literal
or a backquoted name is not a clause.
"""

from __future__ import annotations

from dsmsyncd.server.transforms import ExpressionError, limits
from dsmsyncd.server.transforms.lexer import Token, tokenize

# Clause keyword (with BY for the two-word ones) → the parameter it stands for.
CLAUSES = {
    "select": "$select",
    "where": "$where",
    "group": "$group",
    "having": "$having",
    "order": "$order",
    "limit": "$limit",
    "offset": "$offset",
    "search": "$q",
}
_TWO_WORDS = frozenset({"group", "order"})


def split_statement(text: str) -> dict[str, str]:
    """The parameters of a ``$query`` statement; raises ``ExpressionError``.

    The whole statement is held to the length limit of one expression before it is read.
    """
    limits.check_text(text)
    if "|>" in text:
        raise ExpressionError(
            "Chained queries (|>) are not supported by the local server; "
            "write one SELECT … statement",
            text.index("|>"),
            "syntax",
            text,
        )
    tokens = tokenize(text)
    starts: list[tuple[str, Token, int]] = []  # (parameter, keyword token, text start)
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.is_op("(") or tok.is_op("["):
            depth += 1
        elif tok.is_op(")") or tok.is_op("]"):
            depth -= 1
        elif depth == 0 and tok.kind == "ident" and tok.text.lower() in CLAUSES:
            word = tok.text.lower()
            after = tokens[i + 1]
            if word in _TWO_WORDS:
                if not after.is_keyword("by"):
                    raise _error(f"Expected BY after {tok.text.upper()}", after, text)
                after = tokens[i + 2]
            starts.append((CLAUSES[word], tok, after.position))
    if not starts or starts[0][1].position != tokens[0].position:
        raise _error("A $query statement starts with SELECT (or WHERE, ORDER BY…)", tokens[0], text)
    params: dict[str, str] = {}
    for n, (param, tok, begin) in enumerate(starts):
        end = starts[n + 1][1].position if n + 1 < len(starts) else len(text)
        if param in params:
            raise _error(f"The {tok.text.upper()} clause appears twice", tok, text)
        params[param] = text[begin:end].strip()
    if "$q" in params:
        params["$q"] = _search_text(params["$q"])
    return params


def _search_text(clause: str) -> str:
    tokens = tokenize(clause)
    if len(tokens) != 2 or tokens[0].kind != "string":
        raise _error("SEARCH takes one text literal, e.g. SEARCH 'fire'", tokens[0], clause)
    return tokens[0].text


def _error(message: str, tok: Token, text: str) -> ExpressionError:
    return ExpressionError(message, tok.position, "syntax", text)
