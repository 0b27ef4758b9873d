"""Geometry processing: centroid, polylabel, simplify, validate/repair, within, lengths.

These run as Python UDFs (see :mod:`.udf`) over the GeoJSON text geometries are stored
as; the algorithms are in :mod:`.geometry_ops`. Signatures follow the hosted docs.
"""

from __future__ import annotations

import json

from dsmsyncd.server.soql_types import GEOMETRY_TYPES, SoqlType
from dsmsyncd.server.transforms import geometry_ops as ops
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.typecheck import Call
from dsmsyncd.server.transforms.udf import CellError, udf, udf_call

T, N, B = SoqlType.TEXT, SoqlType.NUMBER, SoqlType.CHECKBOX
P, L, ML = SoqlType.POINT, SoqlType.LINE, SoqlType.MULTILINE
PG, MPG = SoqlType.POLYGON, SoqlType.MULTIPOLYGON
V, D = "VARCHAR", "DOUBLE"


@udf("centroid", V, failure="invalid_geometry")
def _centroid_udf(geometry: str) -> str:
    return ops.centroid(geometry)


@define("centroid", (frozenset({PG, MPG}),), P)
def _centroid(c: Call) -> tuple[str, str]:
    return udf_call("centroid", [c.args[0].value], P)


@udf("polylabel", V, failure="invalid_geometry")
def _polylabel_udf(geometry: str) -> str:
    return ops.pole_of_inaccessibility(geometry)


@define("polylabel", (PG,), P)
def _polylabel(c: Call) -> tuple[str, str]:
    return udf_call("polylabel", [c.args[0].value], P)


def _simplifier(name: str, preserve_topology: bool) -> None:
    @udf(name, V, D, failure="invalid_geometry")
    def body(geometry: str, vertices: float) -> str:
        try:
            return ops.simplify(geometry, vertices, preserve_topology=preserve_topology)
        except ValueError as error:
            raise CellError("out_of_range", f"{name}: {error}", {"value": vertices}) from None

    def build(c: Call) -> tuple[str, str]:
        return udf_call(name, [c.args[0].value, c.args[1].value], c.args[0].type)

    note = "each line or ring gets the vertex count (a ring keeps 4, a line 2)"
    for kind in (L, ML, PG, MPG):
        define(name, (kind, N), kind, note=note)(build)


_simplifier("simplify", False)
_simplifier("simplify_preserve_topology", True)


@udf("validate_geometry", V, failure="invalid_geometry")
def _validate_udf(geometry: str) -> str:
    value = json.loads(geometry)
    reason = ops.invalid_reason(value)
    if reason is None:
        return geometry
    reason += " See the repair_geometry function to fix this."
    english = f"Geometry invariant violation: {reason}"
    raise CellError("invalid_geometry", english, {"value": value, "reason": reason})


@udf("repair_geometry", V, failure="invalid_geometry")
def _repair_udf(geometry: str) -> str:
    value = json.loads(geometry)
    if ops.invalid_reason(value) is None:
        return geometry
    return ops.dumps(ops.repair(value))


def _checker(name: str) -> None:
    def build(c: Call) -> tuple[str, str]:
        return udf_call(name, [c.args[0].value], c.args[0].type)

    note = "checks the documented invariants: closed rings of 4+ coordinates, lines of 2+"
    for kind in sorted(GEOMETRY_TYPES):
        define(name, (kind,), kind, note=note if name == "validate_geometry" else None)(build)


_checker("validate_geometry")
_checker("repair_geometry")


@udf("haversine_distance", V, failure="invalid_geometry")
def _haversine_udf(line: str) -> str:
    return repr(ops.haversine_length(line))


@define("haversine_distance", (frozenset({L, ML}),), N)
def _haversine(c: Call) -> tuple[str, str]:
    return udf_call("haversine_distance", [c.args[0].value], N)


@udf("is_within", V, V, failure="invalid_geometry")
def _is_within_udf(point: str, area: str) -> str:
    return "true" if ops.is_within(point, area) else "false"


@define("is_within", (P, frozenset({PG, MPG})), B)
def _is_within(c: Call) -> tuple[str, str]:
    return udf_call("is_within", [c.args[0].value, c.args[1].value], B)


@udf("ensure_within", V, V, failure="invalid_geometry")
def _ensure_within_udf(point: str, area: str) -> str:
    if ops.is_within(point, area):
        return point
    english = "The point is not within the multipolygon"
    raise CellError("not_within", english, {"value": json.loads(point)})


@define("ensure_within", (P, frozenset({PG, MPG})), P)
def _ensure_within(c: Call) -> tuple[str, str]:
    return udf_call("ensure_within", [c.args[0].value, c.args[1].value], P)


@udf("from_polyline", V, D, failure="type_conversion_failed")
def _from_polyline_udf(encoded: str, precision: float) -> str | None:
    if not encoded.strip():
        return None  # blank text is no line, as for to_line
    if precision != int(precision) or not 0 <= precision <= 15:
        raise CellError(
            "out_of_range", "from_polyline: the precision must be a whole number from 0 to 15"
        )
    try:
        coords = ops.decode_polyline(encoded, int(precision))
    except ValueError:
        coords = []
    if len(coords) < 2:
        english = f'Unable to convert "{encoded}" from text to line'
        data = {"value": encoded, "source_type": "text", "target_type": "line"}
        raise CellError("type_conversion_failed", english, data)
    return ops.dumps({"type": "LineString", "coordinates": coords})


@define("from_polyline", (T, N), L)
@define("from_polyline", (T,), L)
def _from_polyline(c: Call) -> tuple[str, str]:
    precision = c.args[1].value if len(c.args) > 1 else "5"
    return udf_call("from_polyline", [c.args[0].value, precision], L)
