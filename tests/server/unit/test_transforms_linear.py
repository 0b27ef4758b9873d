"""Generated SQL grows linearly with the expression, for every function of the registry.

Issue 11: builders spliced their arguments' SQL several times, so nesting multiplied
the SQL about 5x per level and one 172-character ``$select`` took the server down.
These tests nest each function ten levels deep and check the SQL stays within a
constant per level, and that the SQL of bound (``binding.py``) levels runs in DuckDB
with the same answers as the expression spelled out level by level.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import (
    ColumnInput,
    ExpressionError,
    binding,
    compile_expression,
    limits,
    register_udfs,
)
from dsmsyncd.server.transforms.compiler import CompiledExpression, compile_node
from dsmsyncd.server.transforms.limits import ExpressionLimitError
from dsmsyncd.server.transforms.parser import ColumnRef, FunCall, Lit, Node, parse_expression
from dsmsyncd.server.transforms.registry import REGISTRY
from dsmsyncd.server.transforms.typecheck import Signature

COLUMNS = {"a": ColumnInput('"a"', SoqlType.TEXT)}
ROWS = ["1", "x", None, "", "2020-01-02", "POINT (1 2)", '{"k": [1, "a"]}', "-3.75"]
# Each call adds at most its template and the binding of its arguments to the SQL of
# its arguments, so the SQL is at most a constant per node (measured: 13 to 2,400, the
# largest being the WKT parsers' regexes).
PER_NODE = 3_000

# Text literals for parameters that must be literals (formats, zones, regexes, units…).
TEXT_LITERALS = [
    "a",
    "%Y-%m-%d",
    "UTC",
    "md5",
    "(?P<g>a)",
    "g",
    ".k",
    "business days",
    " ",
    "/a",
    "EPSG:3857",
]
# How a text value becomes each type, and a sample value of the type.
CONVERT: dict[SoqlType, str] = {
    SoqlType.NUMBER: "to_number",
    SoqlType.CHECKBOX: "to_boolean",
    SoqlType.CALENDAR_DATE: "to_floating_timestamp",
    SoqlType.DATE: "to_fixed_timestamp",
    SoqlType.JSON: "to_json",
    SoqlType.POINT: "to_point",
    SoqlType.LINE: "to_line",
    SoqlType.POLYGON: "to_polygon",
    SoqlType.MULTIPOINT: "to_multipoint",
    SoqlType.MULTILINE: "to_multiline",
    SoqlType.MULTIPOLYGON: "to_multipolygon",
    SoqlType.URL: "to_url",
    SoqlType.LOCATION: "to_location",
}
SAMPLE_TEXT: dict[SoqlType, str] = {
    SoqlType.NUMBER: "2",
    SoqlType.CHECKBOX: "true",
    SoqlType.CALENDAR_DATE: "2020-01-02T03:04:05",
    SoqlType.DATE: "2020-01-02T03:04:05Z",
    SoqlType.JSON: '{"k": [1, "a"]}',
    SoqlType.POINT: "POINT (1 2)",
    SoqlType.LINE: "LINESTRING (1 2, 3 4)",
    SoqlType.POLYGON: "POLYGON ((0 0, 1 0, 1 1, 0 0))",
    SoqlType.MULTIPOINT: "MULTIPOINT ((1 2), (3 4))",
    SoqlType.MULTILINE: "MULTILINESTRING ((1 2, 3 4))",
    SoqlType.MULTIPOLYGON: "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0)))",
    SoqlType.URL: "http://example.com",
    SoqlType.LOCATION: "1 Main St, Springfield, IL 62701 (39.8, -89.6)",
}
NOT_NESTABLE = ["source_created_at"]
ANY_TYPES = [SoqlType.TEXT, SoqlType.NUMBER, SoqlType.CHECKBOX, SoqlType.CALENDAR_DATE]


def nest(wrap: Callable[[str], str], depth: int, start: str = "a") -> str:
    expr = start
    for _ in range(depth):
        expr = wrap(expr)
    return expr


def sql_size(expr: str) -> int:
    compiled = compile_expression(expr, COLUMNS)
    return len(compiled.value_sql) + len(compiled.error_sql)


def node_count(node: Node) -> int:
    if isinstance(node, FunCall):
        return 1 + sum(node_count(a) for a in node.args)
    return 1


@functools.cache
def _table() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    register_udfs(con)
    con.execute("CREATE TABLE t (a VARCHAR, i INTEGER)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [[v, i] for i, v in enumerate(ROWS)])
    return con


def evaluate(value_sql: str, error_sql: str) -> list[tuple[Any, Any]]:
    sql = f"SELECT ({value_sql}), ({error_sql}) FROM t ORDER BY i"
    rows = _table().cursor().execute(sql).fetchall()
    return [(str(v), json.loads(e) if e is not None else None) for v, e in rows]


def test_issue_expression_sql_is_linear_and_answers_right() -> None:
    """The issue's request: ``(to_number(X)+1)::text`` nested; 33 MB of SQL at depth 8."""

    def wrap(e: str) -> str:
        return f"(to_number({e})+1)::text"

    sizes = [sql_size(nest(wrap, n)) for n in range(1, 11)]
    for n, size in enumerate(sizes, start=1):
        assert size <= n * 3 * PER_NODE, sizes  # three calls per level
    # Depth 8: was 66,991,730 characters. Each level is about 4.5k since numbers are
    # checked decimals (range and precision errors), still a constant per level.
    assert sizes[7] < 40_000, sizes
    compiled = compile_expression(nest(wrap, 8), COLUMNS)
    result = evaluate(compiled.value_sql, compiled.error_sql)
    assert result[0] == ("9", None)  # '1' + 8
    assert result[7] == ("4.25", None)  # -3.75 + 8
    assert result[2] == ("None", None)  # NULL stays NULL
    value, error = result[1]
    assert value == "None"
    assert error == {
        "type": "type_conversion_failed",
        "english": 'Unable to convert "x" from text to number',
        "data": {"value": "x", "source_type": "text", "target_type": "number"},
    }


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: f"to_text(to_number({e}) * 2)",
        lambda e: f"coalesce(to_text(to_number({e})), 'none') || '|' || {e}",
        lambda e: f"case(is_empty({e}), 'E', true, upper({e}))",
        lambda e: f"forgive(to_text(to_number({e})), 'bad')",
        lambda e: f"slice({e}, 0, 3) || left_pad({e}, 4, '0')",
        lambda e: f"to_text(to_floating_timestamp({e}))",
        lambda e: f"to_text(to_point({e}))",
        lambda e: f"to_text(to_number({e}) / to_number({e}))",
    ],
    ids=["arith", "coalesce", "case", "forgive", "text", "timestamp", "point", "divide"],
)
def test_nested_shapes_grow_linearly(wrap: Callable[[str], str]) -> None:
    """Measured per node: in some shapes the text itself doubles per level (``e`` twice)."""
    for n in range(1, 11):
        expr = nest(wrap, n)
        nodes = node_count(parse_expression(expr))
        # Stop where the SQL limit may refuse it (divisions, about 1.9k a node, get there).
        if len(expr) > 5_000 or nodes * PER_NODE > limits.MAX_SQL_CHARS:
            break
        assert sql_size(expr) <= nodes * PER_NODE, n


def _candidates(spec: Any) -> list[SoqlType]:
    if isinstance(spec, SoqlType):
        return [spec]
    if isinstance(spec, frozenset):
        return sorted(spec, key=lambda t: t.value)
    return ANY_TYPES


def _sample(kind: SoqlType, text: str) -> Node:
    """A non-nested argument of type ``kind``; literals where builders require them."""
    if kind is SoqlType.TEXT:
        return Lit("string", text, 0)
    if kind is SoqlType.NUMBER:
        return Lit("number", "1", 0)
    if kind is SoqlType.CHECKBOX:
        return Lit("boolean", True, 0)
    return FunCall(CONVERT[kind], (Lit("string", SAMPLE_TEXT[kind], 0),), 0)


def _from_text(kind: SoqlType, node: Node) -> Node:
    return node if kind is SoqlType.TEXT else FunCall(CONVERT[kind], (node,), 0)


def _shapes(sig: Signature) -> Iterator[tuple[int, list[SoqlType]]]:
    """(nested position, argument types) for each way to call ``sig``."""
    count = len(sig.params) + (sig.repeat or 0)
    for types in itertools.product(*[_candidates(sig.param(i)) for i in range(count)]):
        bound: dict[str, SoqlType] = {}
        if any(
            isinstance(sig.param(i), str)
            and not isinstance(sig.param(i), SoqlType)
            and bound.setdefault(str(sig.param(i)), t) is not t
            for i, t in enumerate(types)
        ):
            continue  # a type variable bound to two types
        if any(t not in CONVERT and t is not SoqlType.TEXT for t in types):
            continue
        for position in range(count):
            yield position, list(types)


def _level(
    name: str, position: int, types: list[SoqlType], texts: tuple[str, ...], inner: Node
) -> Node:
    text_iter = iter(texts)
    args: list[Node] = []
    for i, kind in enumerate(types):
        if i == position:
            args.append(_from_text(kind, inner))
        else:
            args.append(_sample(kind, next(text_iter) if kind is SoqlType.TEXT else ""))
    return FunCall(name, tuple(args), 0)


def _nested(
    name: str, position: int, types: list[SoqlType], texts: tuple[str, ...], n: int
) -> Node:
    node: Node = ColumnRef("a", 0)
    for _ in range(n):
        node = _level(name, position, types, texts, node)
        node = FunCall("to_text", (node,), 0)
    return node


def _first_compiling(name: str, position: int, types: list[SoqlType]) -> tuple[str, ...] | None:
    needed = sum(1 for i, t in enumerate(types) if t is SoqlType.TEXT and i != position)
    for texts in itertools.product(TEXT_LITERALS, repeat=needed):
        try:
            compile_node("", _nested(name, position, types, texts, 1), COLUMNS)
        except ExpressionError:
            continue
        return texts
    return None


def _bound_and_spliced(
    name: str,
    position: int,
    types: list[SoqlType],
    texts: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[CompiledExpression, CompiledExpression]:
    """Depth 2 compiled both ways (depth 1 where spliced SQL is over the SQL limit).

    The bound side binds every call that grows (no ``INLINE_MAX`` allowance), so that
    small depths exercise binding as much as deep expressions do.
    """
    for depth in (2, 1):
        node = _nested(name, position, types, texts, depth)
        with monkeypatch.context() as patch:
            patch.setattr(binding, "should_bind", lambda args, inline: False)
            try:
                spliced = compile_node("", node, COLUMNS)
            except ExpressionLimitError:
                print(name, types, position, "spliced over the limit at depth", depth)
                continue
        with monkeypatch.context() as patch:
            patch.setattr(binding, "INLINE_MAX", 0)
            return compile_node("", node, COLUMNS), spliced
    raise AssertionError(f"{name}: spliced SQL over the limit at depth 1")


def _agree(name: str, bound: CompiledExpression, spliced: CompiledExpression) -> bool:
    """Whether the bound and the spliced SQL give the same values and errors."""
    answers = evaluate(bound.value_sql, bound.error_sql)
    return name.startswith("random_") or answers == evaluate(spliced.value_sql, spliced.error_sql)


# Every signature ten deep, evaluated twice: number builders carry range checks (exact
# decimals), so DuckDB spends ~0.1 s planning each depth-2 statement. The evaluations
# run on two threads (DuckDB releases the GIL) while the next signatures compile.
@pytest.mark.timeout(600)
def test_every_builder_nests_linearly_and_answers_as_when_spliced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An audit of every signature, nested ten deep through each argument position.

    At depth 2 the SQL (with bound levels) must give the same values and errors as the
    SQL spliced the old way (binding switched off), which is still small enough there.
    """
    covered: set[str] = set()
    checked = bound_levels = 0
    agreements: list[tuple[str, concurrent.futures.Future[bool]]] = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    for name, sigs in sorted(REGISTRY.items()):
        for sig in sigs:
            for position, types in _shapes(sig):
                texts = _first_compiling(name, position, types)
                if texts is None:
                    continue  # that argument must be a literal, or the types never fit
                sizes = []
                for n in range(1, 11):
                    node = _nested(name, position, types, texts, n)
                    compiled = compile_node("", node, COLUMNS)
                    sizes.append(len(compiled.value_sql) + len(compiled.error_sql))
                    assert sizes[-1] <= node_count(node) * PER_NODE, (name, n, sizes)
                # Linear: each level deeper adds the same SQL, not more.
                assert sizes[9] - sizes[8] <= sizes[6] - sizes[5], (name, sizes)
                bound, spliced = _bound_and_spliced(name, position, types, texts, monkeypatch)
                agreements.append((name, pool.submit(_agree, name, bound, spliced)))
                covered.add(name)
                checked += 1
                bound_levels += binding.LET in bound.value_sql + bound.error_sql
    with pool:
        disagreeing = [name for name, agreed in agreements if not agreed.result()]
    assert disagreeing == []
    # Functions without a non-literal argument cannot nest.
    assert sorted(n for n in REGISTRY if n not in covered) == NOT_NESTABLE
    print(f"{checked} nestings checked, {bound_levels} with bound levels at depth 2")
    assert checked > 150
    assert bound_levels > checked // 2
