"""Geometry, url and JSON functions. All these values are JSON text in VARCHAR columns.

WKT is turned into GeoJSON with regexes (no spatial extension needed): coordinate pairs
become ``[x,y]``, parentheses become brackets, and the nesting depth is checked.
"""

from __future__ import annotations

import re

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import (
    NULL,
    conversion_failed,
    fail_when,
    first_error,
    plain_error,
    sql_text,
)
from dsmsyncd.server.transforms.typecheck import Call

T, N, B, J = SoqlType.TEXT, SoqlType.NUMBER, SoqlType.CHECKBOX, SoqlType.JSON
P, U = SoqlType.POINT, SoqlType.URL
_NUM = r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"

_BARE_POINT = sql_text(rf"\(\s*({_NUM}\s+{_NUM})\s*\)")
_PAIR = sql_text(rf"({_NUM})\s+({_NUM})")

# SoQL type → (WKT keyword, GeoJSON type, bracket depth of "coordinates").
_GEOMETRIES = {
    SoqlType.LINE: ("LINESTRING", "LineString", 2),
    SoqlType.POLYGON: ("POLYGON", "Polygon", 3),
    SoqlType.MULTIPOINT: ("MULTIPOINT", "MultiPoint", 2),
    SoqlType.MULTILINE: ("MULTILINESTRING", "MultiLineString", 3),
    SoqlType.MULTIPOLYGON: ("MULTIPOLYGON", "MultiPolygon", 4),
}


@define("to_point", (T,), P)
def _to_point(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    pattern = sql_text(rf"^\s*(?i:POINT)\s*\(\s*({_NUM})\s+({_NUM})\s*\)\s*$")
    lon = f"TRY_CAST(regexp_extract({x}, {pattern}, 1) AS DOUBLE)"
    lat = f"TRY_CAST(regexp_extract({x}, {pattern}, 2) AS DOUBLE)"
    value = (
        f"(CASE WHEN regexp_matches({x}, {pattern}) THEN CAST(json_object('type', 'Point', "
        f"'coordinates', json_array({lon}, {lat})) AS VARCHAR) END)"
    )
    bad = f"trim({x}) <> '' AND NOT regexp_matches({x}, {pattern})"
    return value, fail_when(bad, conversion_failed(x, T, P))


def _wkt(soql_type: SoqlType) -> None:
    keyword, geojson_type, depth = _GEOMETRIES[soql_type]
    name = f"to_{soql_type.value}"

    @define(name, (T,), soql_type)
    def build(c: Call) -> tuple[str, str]:
        x = c.args[0].value
        head = sql_text(rf"^\s*(?i:{keyword})\s*")
        body = f"regexp_replace({x}, {head}, '')"
        if soql_type is SoqlType.MULTIPOINT:  # MULTIPOINT ((1 2), (3 4)) → (1 2, 3 4)
            body = f"regexp_replace({body}, {_BARE_POINT}, '\\1', 'g')"
        pairs = f"regexp_replace({body}, {_PAIR}, '[\\1,\\2]', 'g')"
        coords = f"replace(replace(regexp_replace({pairs}, '\\s+', '', 'g'), '(', '['), ')', ']')"
        shape = sql_text(r"^\[{" + str(depth - 1) + r"}\[-?\d[-\d.eE,\[\]]*$")
        ok = (
            f"regexp_matches({x}, {head}) AND regexp_matches({coords}, {shape}) "
            f"AND json_valid({coords})"
        )
        value = (
            f'(CASE WHEN {ok} THEN \'{{"type":"{geojson_type}","coordinates":\' '
            f"|| {coords} || '}}' END)"
        )
        return value, fail_when(
            f"trim({x}) <> '' AND NOT ({ok})", conversion_failed(x, T, soql_type)
        )


for _geometry in _GEOMETRIES:
    _wkt(_geometry)


def _same(name: str, soql_type: SoqlType) -> None:
    @define(name, (soql_type,), soql_type)
    def build(c: Call) -> tuple[str, str]:
        return c.args[0].value, NULL


for _geometry in (P, *_GEOMETRIES):
    _same(f"to_{_geometry.value}", _geometry)
_same("to_url", U)


@define("make_point", (N, N), P)
def _make_point(c: Call) -> tuple[str, str]:
    # GeoJSON coordinates are doubles.
    lat, lon = (f"CAST({a.value} AS DOUBLE)" for a in c.args)
    return (
        f"CAST(json_object('type', 'Point', 'coordinates', json_array({lon}, {lat})) AS VARCHAR)",
        NULL,
    )


@define("point_latitude", (P,), N)
@define("op$.latitude", (P,), N)
def _latitude(c: Call) -> tuple[str, str]:
    coordinate = f"json_extract_string({c.args[0].value}, '$.coordinates[1]')"
    return f"TRY_CAST({coordinate} AS {numbers.NUM})", NULL


@define("point_longitude", (P,), N)
@define("op$.longitude", (P,), N)
def _longitude(c: Call) -> tuple[str, str]:
    coordinate = f"json_extract_string({c.args[0].value}, '$.coordinates[0]')"
    return f"TRY_CAST({coordinate} AS {numbers.NUM})", NULL


@define("to_url", (T,), U)
def _to_url(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    is_object = f"(json_valid({x}) AND json_type({x}) = 'OBJECT' AND json_exists({x}, '$.url'))"
    return (
        f"(CASE WHEN {is_object} THEN {x} ELSE CAST(json_object('url', {x}) AS VARCHAR) END)",
        NULL,
    )


@define("make_url", (T, T), U, strict=False)
def _make_url(c: Call) -> tuple[str, str]:
    url, description = c.args[0].value, c.args[1].value
    value = f"CAST(json_object('url', {url}, 'description', {description}) AS VARCHAR)"
    return f"(CASE WHEN {url} IS NULL AND {description} IS NULL THEN NULL ELSE {value} END)", NULL


@define("url_url", (U,), T)
@define("op$.url", (U,), T)
def _url_url(c: Call) -> tuple[str, str]:
    return f"json_extract_string({c.args[0].value}, '$.url')", NULL


@define("url_description", (U,), T)
@define("op$.description", (U,), T)
def _url_description(c: Call) -> tuple[str, str]:
    return f"json_extract_string({c.args[0].value}, '$.description')", NULL


def _json_path(c: Call) -> str:
    """A jq-like ``.a.[0].["b"]`` path (argument 2) as a DuckDB JSON path literal."""
    path = c.literal_text(1, "path").strip()
    out = "$"
    pattern = re.compile(r'\.(?:([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\])')
    pos = 0
    while pos < len(path):
        m = pattern.match(path, pos)
        if m is None:
            if path[pos:] == ".":
                break
            raise c.fail(f"{c.name}: cannot read the path {path!r} at {path[pos:]!r}", 1, "syntax")
        field, index, quoted = m.groups()
        if index is not None:
            out += f"[{index}]"
        else:
            out += '."' + (field or quoted).replace('"', '\\"') + '"'
        pos = m.end()
    return sql_text(out)


def _document(x: str, soql_type: SoqlType) -> tuple[str, str]:
    """The JSON to read (NULL unless valid) and the error when text is not JSON."""
    if soql_type is J:
        return x, NULL
    valid = f"(CASE WHEN json_valid({x}) THEN {x} END)"
    return valid, fail_when(f"NOT json_valid({x})", conversion_failed(x, T, J))


_JSON_IN = frozenset({T, J})


@define("json_pluck", (_JSON_IN, T), J)
def _json_pluck(c: Call) -> tuple[str, str]:
    doc, error = _document(c.args[0].value, c.args[0].type)
    return f"CAST(json_extract({doc}, {_json_path(c)}) AS VARCHAR)", error


def _typed_pluck(name: str, json_types: str, cast: str, result: SoqlType) -> None:
    @define(name, (_JSON_IN, T), result)
    def build(c: Call) -> tuple[str, str]:
        doc, error = _document(c.args[0].value, c.args[0].type)
        path = _json_path(c)
        kind = f"json_type({doc}, {path})"
        converted, range_error = f"TRY_CAST({doc}->>{path} AS {cast})", NULL
        if result is N:  # a JSON number may not fit the stored decimal: say so
            converted, range_error = numbers.from_text(f"({doc}->>{path})")
            range_error = fail_when(f"{kind} IN {json_types}", range_error)
        value = f"(CASE WHEN {kind} IN {json_types} THEN {converted} END)"
        wrong = plain_error(
            "type_conversion_failed", f"Unable to convert the value at the path to {result.value}"
        )
        own = fail_when(f"{kind} NOT IN {json_types} AND {kind} <> 'NULL'", wrong)
        return value, first_error([error, own, range_error])


_typed_pluck("json_pluck_text", "('VARCHAR')", "VARCHAR", T)
_typed_pluck("json_pluck_number", "('BIGINT', 'UBIGINT', 'DOUBLE')", numbers.NUM, N)
_typed_pluck("json_pluck_boolean", "('BOOLEAN')", "BOOLEAN", B)


@define("op$[]", (J, frozenset({T, N})), J)
def _json_index(c: Call) -> tuple[str, str]:
    x, key = c.args
    if key.type is N:
        path = f"'$[' || CAST(TRY_CAST({key.value} AS BIGINT) AS VARCHAR) || ']'"
        return f"CAST(json_extract({x.value}, {path}) AS VARCHAR)", NULL
    # A JSON pointer names any key (a JSONPath `$.""` makes DuckDB raise); on an array
    # it would index, so only objects are looked into.
    pointer = f"'/' || replace(replace({key.value}, '~', '~0'), '/', '~1')"
    value = f"json_extract({x.value}, {pointer})"
    return f"(CASE WHEN json_type({x.value}) = 'OBJECT' THEN CAST({value} AS VARCHAR) END)", NULL


@define("json_array_contains", (J, frozenset({T, N, B})), B)
def _json_array_contains(c: Call) -> tuple[str, str]:
    x, needle = c.args
    items = f"CAST({x.value} AS JSON[])"
    if needle.type is T:
        element = "CASE WHEN json_type(e) = 'VARCHAR' THEN e->>'$' END"
    elif needle.type is N:
        element = (
            "CASE WHEN json_type(e) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
            f"THEN TRY_CAST(e->>'$' AS {numbers.NUM}) END"
        )
    else:
        element = "CASE WHEN json_type(e) = 'BOOLEAN' THEN TRY_CAST(e->>'$' AS BOOLEAN) END"
    found = f"list_contains(list_transform({items}, lambda e: {element}), {needle.value})"
    value = f"(CASE WHEN json_type({x.value}) = 'ARRAY' THEN {found} END)"
    error = plain_error("type_conversion_failed", "Unable to convert the json value to an array")
    return value, fail_when(f"json_type({x.value}) <> 'ARRAY'", error)
