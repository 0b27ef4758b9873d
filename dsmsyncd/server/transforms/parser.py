"""Parse transform expressions into a small AST that remembers source positions.

Every operator becomes a :class:`FunCall` with an internal name (``op$+``, ``#IS_NULL``,
``cast$json``, ``op$[]``, ``op$.latitude``), so type checking and SQL generation treat
operators and functions alike, and ``parsed_expr`` (the JSON the API reports) has one
shape. Precedence, loosest first: ``or``, ``and``, ``not``, comparisons and predicates
(``IS``, ``BETWEEN``, ``IN``, ``LIKE``), ``||``, ``+ -``, ``* / %``, unary ``+ -``, ``^``
(right-associative), then postfix ``::type``, ``[index]`` and ``.member``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dsmsyncd.server.transforms import limits
from dsmsyncd.server.transforms.errors import ExpressionError
from dsmsyncd.server.transforms.lexer import KEYWORDS, Token, tokenize

LiteralKind = Literal["string", "number", "boolean", "null"]


@dataclass(frozen=True)
class Lit:
    kind: LiteralKind
    value: str | bool | None  # numbers keep their source text
    position: int


@dataclass(frozen=True)
class ColumnRef:
    name: str
    position: int


@dataclass(frozen=True)
class FunCall:
    name: str  # lower-cased function name, or an internal operator name
    args: tuple[Node, ...]
    position: int


Node = Lit | ColumnRef | FunCall

_COMPARISONS = {"=": "op$=", "==": "op$=", "!=": "op$!=", "<>": "op$!=", "<": "op$<"}
_COMPARISONS |= {"<=": "op$<=", ">": "op$>", ">=": "op$>="}
_BINARY = {"||": (5, "op$||"), "+": (6, "op$+"), "-": (6, "op$-"), "*": (7, "op$*")}
_BINARY |= {"/": (7, "op$/"), "%": (7, "op$%")}
_PREDICATE_BP = 4


def to_json(node: Node) -> dict[str, Any]:
    """The ``parsed_expr`` JSON for a node."""
    if isinstance(node, Lit):
        return {"type": f"{node.kind}_literal", "value": node.value}
    if isinstance(node, ColumnRef):
        return {"type": "column_ref", "value": node.name}
    return {"type": "funcall", "function_name": node.name, "args": [to_json(a) for a in node.args]}


def parse_expression(source: str) -> Node:
    parser = _Parser(source)
    node = parser.expression(0)
    parser.expect_end()
    return node


@dataclass(frozen=True)
class SelectItem:
    expr: Node | None  # None for `*` and `:*`
    alias: str | None
    position: int
    system: bool = False  # `:*`: every system field (SODA reads)


def parse_select(source: str) -> list[SelectItem]:
    """A ``$select`` list: ``*``, ``:*`` or ``expr [AS alias]`` items, comma-separated."""
    parser = _Parser(source)
    items: list[SelectItem] = []
    while True:
        tok = parser.peek()
        if tok.is_op("*") or tok.is_op(":*"):
            parser.advance()
            items.append(SelectItem(None, None, tok.position, system=tok.text == ":*"))
        else:
            expr = parser.expression(0)
            alias = None
            if parser.peek().is_keyword("as"):
                parser.advance()
                alias_tok = parser.advance()
                if alias_tok.kind not in ("ident", "column"):
                    raise parser.error("Expected a column alias after AS", alias_tok)
                alias = alias_tok.text
            items.append(SelectItem(expr, alias, tok.position))
        if not parser.peek().is_op(","):
            break
        parser.advance()
    parser.expect_end()
    return items


def parse_order(source: str) -> list[tuple[Node, bool]]:
    """An ``$order`` list: ``expr [ASC|DESC]`` items; the flag is True for descending."""
    parser = _Parser(source)
    items: list[tuple[Node, bool]] = []
    while True:
        expr = parser.expression(0)
        desc = False
        tok = parser.peek()
        if tok.kind == "ident" and tok.text.lower() in ("asc", "desc"):
            desc = tok.text.lower() == "desc"
            parser.advance()
        items.append((expr, desc))
        if not parser.peek().is_op(","):
            break
        parser.advance()
    parser.expect_end()
    return items


class _Parser:
    """A Pratt parser that enforces the limits of ``limits.py`` as it builds the tree.

    Depth is checked twice: the parser's own recursion (parentheses nest without making
    nodes) and the tree's depth (``a+b+c+…`` is a loop here but a deep tree for the
    compiler, which recurses over it).
    """

    def __init__(self, source: str) -> None:
        limits.check_text(source)
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.nesting = 0
        self.nodes = 0
        self.depths: dict[int, int] = {}  # id(FunCall) → depth of its subtree

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.peek()
        self.index += 1
        return tok

    def error(self, message: str, tok: Token) -> ExpressionError:
        return ExpressionError(message, tok.position, "syntax", self.source)

    def expect_op(self, op: str, what: str) -> Token:
        tok = self.advance()
        if not tok.is_op(op):
            raise self.error(f"Expected {op!r} {what}, found {_describe(tok)}", tok)
        return tok

    def expect_end(self) -> None:
        tok = self.peek()
        if tok.kind != "eof":
            raise self.error(
                f"Unexpected {_describe(tok)}: the expression should end here "
                "(a missing operator or comma?)",
                tok,
            )

    def expression(self, min_bp: int) -> Node:
        self.nesting += 1
        if self.nesting > limits.MAX_EXPRESSION_DEPTH:
            raise limits.too_deep(self.peek().position, self.source)
        left = self.prefix()
        while True:
            tok = self.peek()
            nxt = self._infix(left, tok, min_bp)
            if nxt is None:
                self.nesting -= 1
                return left
            left = nxt

    def counted(self, node: Lit | ColumnRef) -> Node:
        """A leaf, counted against the node limit."""
        self.nodes += 1
        if self.nodes > limits.MAX_EXPRESSION_NODES:
            raise limits.too_many_nodes(node.position, self.source)
        return node

    def funcall(self, name: str, args: tuple[Node, ...], pos: int) -> FunCall:
        """A call or operator node, counted and checked against the depth limit."""
        depth = 1 + max((self.depths.get(id(a), 1) for a in args), default=0)
        if depth > limits.MAX_EXPRESSION_DEPTH:
            raise limits.too_deep(pos, self.source)
        self.nodes += 1
        if self.nodes > limits.MAX_EXPRESSION_NODES:
            raise limits.too_many_nodes(pos, self.source)
        node = FunCall(name, args, pos)
        self.depths[id(node)] = depth
        return node

    def _infix(self, left: Node, tok: Token, min_bp: int) -> Node | None:
        pos = tok.position
        if tok.is_keyword("or") and min_bp < 1:
            self.advance()
            return self.funcall("op$or", (left, self.expression(1)), pos)
        if tok.is_keyword("and") and min_bp < 2:
            self.advance()
            return self.funcall("op$and", (left, self.expression(2)), pos)
        if min_bp < _PREDICATE_BP:
            if tok.kind == "op" and tok.text in _COMPARISONS:
                self.advance()
                right = self.expression(_PREDICATE_BP + 1)
                return self.funcall(_COMPARISONS[tok.text], (left, right), pos)
            if tok.is_keyword("is"):
                self.advance()
                negated = self.peek().is_keyword("not")
                if negated:
                    self.advance()
                null_tok = self.advance()
                if not null_tok.is_keyword("null"):
                    raise self.error("Expected NULL after IS [NOT]", null_tok)
                return self.funcall("#IS_NOT_NULL" if negated else "#IS_NULL", (left,), pos)
            negated = tok.is_keyword("not") and any(
                self.peek(1).is_keyword(w) for w in ("between", "in", "like")
            )
            word = self.peek(1 if negated else 0)
            if any(word.is_keyword(w) for w in ("between", "in", "like")):
                self.index += 2 if negated else 1
                return self._predicate(left, word.text.upper(), negated, pos)
        if tok.kind == "op" and tok.text in _BINARY:
            bp, name = _BINARY[tok.text]
            if min_bp < bp:
                self.advance()
                return self.funcall(name, (left, self.expression(bp)), pos)
        if tok.is_op("^") and min_bp < 9:
            self.advance()
            return self.funcall("op$^", (left, self.expression(8)), pos)
        return self._postfix(left, tok)

    def _predicate(self, left: Node, word: str, negated: bool, pos: int) -> Node:
        name = f"#NOT_{word}" if negated else f"#{word}"
        if word == "BETWEEN":
            low = self.expression(_PREDICATE_BP)
            and_tok = self.advance()
            if not and_tok.is_keyword("and"):
                raise self.error("Expected AND in BETWEEN … AND …", and_tok)
            high = self.expression(_PREDICATE_BP)
            return self.funcall(name, (left, low, high), pos)
        if word == "LIKE":
            return self.funcall(name, (left, self.expression(_PREDICATE_BP + 1)), pos)
        self.expect_op("(", "after IN")
        items = [self.expression(0)]
        while self.peek().is_op(","):
            self.advance()
            items.append(self.expression(0))
        self.expect_op(")", "to close the IN list")
        return self.funcall(name, (left, *items), pos)

    def _postfix(self, left: Node, tok: Token) -> Node | None:
        if tok.is_op("::"):
            type_name = self._name_after("a type name after ::")
            return self.funcall(f"cast${type_name}", (left,), tok.position)
        if tok.is_op("["):
            self.advance()
            index = self.expression(0)
            self.expect_op("]", "to close the index")
            return self.funcall("op$[]", (left, index), tok.position)
        if tok.is_op("."):
            member = self._name_after("a member name after '.'")
            return self.funcall(f"op$.{member}", (left,), tok.position)
        return None

    def _name_after(self, what: str) -> str:
        """The name a postfix operator (``::``, ``.``) takes, lower-cased; past both."""
        self.advance()
        name = self.advance()
        if name.kind != "ident":
            raise self.error(f"Expected {what}", name)
        return name.text.lower()

    def prefix(self) -> Node:
        tok = self.advance()
        pos = tok.position
        if tok.kind == "string":
            return self.counted(Lit("string", tok.text, pos))
        if tok.kind == "number":
            return self.counted(Lit("number", tok.text, pos))
        if tok.kind == "column":
            return self.counted(ColumnRef(tok.text, pos))
        if tok.kind == "ident":
            word = tok.text.lower()
            if self.peek().is_op("(") and word not in KEYWORDS:
                return self._call(word, pos)
            if word in ("true", "false"):
                return self.counted(Lit("boolean", word == "true", pos))
            if word == "null":
                return self.counted(Lit("null", None, pos))
            if word == "not":
                return self.funcall("op$not", (self.expression(3),), pos)
            if word in KEYWORDS:
                raise self.error(
                    f"Unexpected keyword {tok.text!r}; to name a column called {tok.text!r} "
                    f"write `{tok.text}`",
                    tok,
                )
            return self.counted(ColumnRef(tok.text, pos))
        if tok.is_op("-") or tok.is_op("+"):
            name = "op$neg" if tok.text == "-" else "op$pos"
            return self.funcall(name, (self.expression(8),), pos)
        if tok.is_op("("):
            inner = self.expression(0)
            self.expect_op(")", "to close the parenthesis")
            return inner
        raise self.error(f"Expected a value, found {_describe(tok)}", tok)

    def _call(self, name: str, pos: int) -> Node:
        self.advance()  # (
        args: list[Node] = []
        if self.peek().is_keyword("distinct") and self.peek(1).kind in ("ident", "column"):
            self.advance()  # SoQL's count(distinct x) is the aggregate `count$distinct`
            name += "$distinct"
        if self.peek().is_op("*") and self.peek(1).is_op(")"):
            self.advance()  # count(*): a call with no arguments
        elif not self.peek().is_op(")"):
            args.append(self.expression(0))
            while self.peek().is_op(","):
                self.advance()
                args.append(self.expression(0))
        self.expect_op(")", f"to close the call to {name}")
        return self.funcall(name, tuple(args), pos)


def _describe(tok: Token) -> str:
    if tok.kind == "eof":
        return "the end of the expression"
    if tok.kind == "string":
        return f"text {tok.text!r}"
    return repr(tok.text)
