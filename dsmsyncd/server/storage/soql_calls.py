"""SoQL calls that only SODA reads have: aggregates and geo filters.

``count(*)``, ``count(x)``, ``count(distinct x)``, ``sum``, ``avg``, ``min``, ``max``,
``within_circle``, ``within_box`` and ``distance_in_meters`` are not transform
functions (a transform computes one cell from one row), so they are not in the
transform registry. Instead :class:`CallRewriter` replaces each such call in a parsed
expression by a reference to a synthetic column whose SQL it builds from the call's
arguments, and those arguments are compiled by the transform compiler like any other
expression: identifiers still resolve only to known columns and literals are still
escaped. The rewritten expression is then compiled with the synthetic columns added.

Synthetic column names start with ``#``, which the SoQL lexer never produces for a bare
name; a user's backquoted ``#…`` name is refused as an unknown column.

Distances use the haversine formula on a sphere of the mean Earth radius (6,371,008.8
m), in plain SQL (the DuckDB spatial extension would have to be downloaded); a point's
coordinates are read by the transform functions ``point_latitude``/``point_longitude``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.transforms import ColumnInput, ExpressionError
from dsmsyncd.server.transforms.compiler import compile_node
from dsmsyncd.server.transforms.parser import ColumnRef, FunCall, Lit, Node, to_json

EARTH_RADIUS_M = 6371008.8
AGGREGATES = frozenset({"count", "count$distinct", "sum", "avg", "min", "max"})
GEO_CALLS = frozenset({"within_circle", "within_box", "distance_in_meters"})
SYNTHETIC_PREFIX = "#"


def shape(node: Node) -> str:
    """A node's structure without source positions, to compare two expressions."""
    return json.dumps(to_json(node), sort_keys=True)


@dataclass
class CallRewriter:
    """Rewrites the SODA-only calls of the expressions of one query.

    ``synthetic`` maps each synthetic column to its SQL and type; the same SQL always
    gets the same name, so ``within_circle(…)`` in ``$select`` and ``$group`` compare
    equal after rewriting.
    """

    columns: Mapping[str, ColumnInput]
    synthetic: dict[str, ColumnInput] = field(default_factory=dict)
    aggregated: bool = False  # whether any aggregate was met

    def all_columns(self) -> dict[str, ColumnInput]:
        return {**self.columns, **self.synthetic}

    def rewrite(self, source: str, node: Node, *, aggregates: bool) -> Node:
        """``node`` with SODA-only calls replaced; ``aggregates`` says if they may appear."""
        if isinstance(node, Lit):
            return node
        if isinstance(node, ColumnRef):
            if node.name.startswith(SYNTHETIC_PREFIX):
                raise ExpressionError(
                    f"There is no column named `{node.name}`",
                    node.position,
                    "unknown_column",
                    source,
                )
            return node
        if node.name in AGGREGATES:
            if not aggregates:
                raise ExpressionError(
                    f"The aggregate {_label(node.name)} is not allowed here: filter groups "
                    "with $having, rows with $where",
                    node.position,
                    "syntax",
                    source,
                )
            self.aggregated = True
            args = [self.rewrite(source, a, aggregates=False) for a in node.args]
            return self._synthetic(*self._aggregate(source, node, args), node.position)
        args = [self.rewrite(source, a, aggregates=aggregates) for a in node.args]
        if node.name in GEO_CALLS:
            return self._synthetic(*self._geo(source, node, args), node.position)
        return FunCall(node.name, tuple(args), node.position)

    def _synthetic(self, sql: str, soql_type: SoqlType, position: int) -> ColumnRef:
        for name, known in self.synthetic.items():
            if known.sql == sql:
                return ColumnRef(name, position)
        name = f"{SYNTHETIC_PREFIX}{len(self.synthetic)}"
        self.synthetic[name] = ColumnInput(sql, soql_type)
        return ColumnRef(name, position)

    def _compiled(self, source: str, node: Node) -> tuple[str, SoqlType]:
        compiled = compile_node(source, node, self.all_columns())
        return compiled.value_sql, compiled.output_type

    def _aggregate(self, source: str, call: FunCall, args: list[Node]) -> tuple[str, SoqlType]:
        number = duckdb_type(SoqlType.NUMBER)
        if call.name == "count" and not args:  # count(*)
            return f"CAST(count(*) AS {number})", SoqlType.NUMBER
        if len(args) != 1:
            raise _mismatch(f"{_label(call.name)} takes one argument", call, source)
        value, kind = self._compiled(source, args[0])
        if call.name == "count":
            return f"CAST(count({value}) AS {number})", SoqlType.NUMBER
        if call.name == "count$distinct":
            return f"CAST(count(DISTINCT {value}) AS {number})", SoqlType.NUMBER
        if call.name in ("sum", "avg"):
            if kind is not SoqlType.NUMBER:
                raise _mismatch(
                    f"{call.name} needs a number argument, not {kind.value}", call, source
                )
            return f"CAST({call.name}({value}) AS {number})", SoqlType.NUMBER
        return f"{call.name}({value})", kind  # min, max: any ordered type

    def _geo(self, source: str, call: FunCall, args: list[Node]) -> tuple[str, SoqlType]:
        wanted = {"within_circle": 4, "within_box": 5, "distance_in_meters": 2}[call.name]
        if len(args) != wanted:
            raise _mismatch(f"{call.name} takes {wanted} arguments, not {len(args)}", call, source)
        points = 2 if call.name == "distance_in_meters" else 1
        # A point may be given as WKT text, e.g. distance_in_meters(p, 'POINT (-122 47)').
        args = [self._as_point(source, a) if i < points else a for i, a in enumerate(args)]
        compiled = [self._compiled(source, a) for a in args]
        for i, (_, kind) in enumerate(compiled):
            expected = SoqlType.POINT if i < points else SoqlType.NUMBER
            if kind not in (expected, SoqlType.NULL):
                raise _mismatch(
                    f"{call.name} argument {i + 1} must be a {expected.value}, not {kind.value}",
                    call,
                    source,
                )
        sql = [f"CAST({value} AS DOUBLE)" for value, _ in compiled]
        lat, lon = self._coordinates(source, args[0])
        if call.name == "distance_in_meters":
            lat2, lon2 = self._coordinates(source, args[1])
            distance = haversine(lat, lon, lat2, lon2)
            return f"CAST({distance} AS {duckdb_type(SoqlType.NUMBER)})", SoqlType.NUMBER
        if call.name == "within_circle":
            inside = f"({haversine(lat, lon, sql[1], sql[2])} <= {sql[3]})"
        else:  # within_box(point, nw_lat, nw_lon, se_lat, se_lon)
            inside = (
                f"({lat} BETWEEN {sql[3]} AND {sql[1]} AND {lon} BETWEEN {sql[2]} AND {sql[4]})"
            )
        return f"COALESCE({inside}, FALSE)", SoqlType.CHECKBOX

    def _as_point(self, source: str, node: Node) -> Node:
        if self._compiled(source, node)[1] is SoqlType.TEXT:
            return FunCall("to_point", (node,), node.position)
        return node

    def _coordinates(self, source: str, point: Node) -> tuple[str, str]:
        """SQL for a point's latitude and longitude as DOUBLE, by the transform functions."""
        pos = point.position
        lat, _ = self._compiled(source, FunCall("point_latitude", (point,), pos))
        lon, _ = self._compiled(source, FunCall("point_longitude", (point,), pos))
        return f"CAST({lat} AS DOUBLE)", f"CAST({lon} AS DOUBLE)"


def haversine(lat1: str, lon1: str, lat2: str, lon2: str) -> str:
    """SQL for the great-circle distance in meters between two (lat, lon) in degrees."""
    a = (
        f"pow(sin(radians({lat2} - {lat1}) / 2), 2) + cos(radians({lat1})) * "
        f"cos(radians({lat2})) * pow(sin(radians({lon2} - {lon1}) / 2), 2)"
    )
    # Not least(1, a): DuckDB's least skips NULLs, so a missing point would be far away.
    return f"(2 * {EARTH_RADIUS_M} * asin(sqrt(CASE WHEN {a} > 1 THEN 1.0 ELSE {a} END)))"


def _label(name: str) -> str:
    return "count(distinct …)" if name == "count$distinct" else f"{name}(…)"


def _mismatch(message: str, call: FunCall, source: str) -> ExpressionError:
    return ExpressionError(message, call.position, "type_mismatch", source)
