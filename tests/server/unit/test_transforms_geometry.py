"""Geometry processing functions, checked against the hosted documentation's examples.

Each runs the real compiler's SQL in DuckDB with the server's Python UDFs.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from dsmsyncd.server.transforms import ExpressionError, compile_expression
from tests.server.unit.transform_runner import COLUMNS, error_of, geo, ok, run

SQUARE = "POLYGON ((0.0 0.0, 10.0 0.0, 10.0 10.0, 0.0 10.0, 0.0 0.0))"
MULTI_SQUARE = "MULTIPOLYGON (((0.0 0.0, 10.0 0.0, 10.0 10.0, 0.0 10.0, 0.0 0.0)))"
ZIGZAG = "POLYGON ((0.0 0.0, 5.0 4.0, 11.0 5.5, 17.3 3.2, 27.8 0.1, 0.0 0.0))"
OPEN_TRIANGLE = "POLYGON ((30 20, 45 40, 10 40, 20 20))"


def test_centroid_of_polygon_and_multipolygon() -> None:
    point = {"type": "Point", "coordinates": [5.0, 5.0]}
    assert geo("centroid(to_polygon(a))", SQUARE) == point
    assert geo("centroid(to_multipolygon(a))", MULTI_SQUARE) == point
    assert ok("centroid(to_multipolygon(a))", None) is None


def test_centroid_of_a_broken_polygon_is_a_cell_error() -> None:
    error = error_of("centroid(to_polygon(a))", "POLYGON ((0 0, 1 1))")
    assert error["type"] == "invalid_geometry"
    assert error["english"].startswith("centroid failed: ")


def test_centroid_takes_only_areas() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("centroid(to_line(a))", COLUMNS)
    assert caught.value.reason == "type_mismatch"
    assert caught.value.message == (
        "centroid does not accept argument 1 of type line; it expects multipolygon or polygon"
    )


def test_polylabel_documented_example() -> None:
    shape = "POLYGON ((0.0 0.0, 4.0 0.0, 4.0 1.0, 1.0 1.0, 1.0 4.0, 0.0 4.0, 0.0 0.0))"
    assert geo("polylabel(to_polygon(a))", shape) == {
        "type": "Point",
        "coordinates": [0.5859375, 0.5859375],
    }


@pytest.mark.parametrize(
    ("vertices", "expected"),
    [
        (5, [[0.0, 0.0], [5.0, 4.0], [11.0, 5.5], [27.8, 0.1], [0.0, 0.0]]),
        (4, [[0.0, 0.0], [11.0, 5.5], [27.8, 0.1], [0.0, 0.0]]),
    ],
)
def test_simplify_documented_examples(vertices: int, expected: list[list[float]]) -> None:
    assert geo(f"simplify(to_polygon(a), {vertices})", ZIGZAG) == {
        "type": "Polygon",
        "coordinates": [expected],
    }


@pytest.mark.parametrize(
    ("vertices", "expected"),
    [
        (6, [[0.0, 0.0], [5.0, 4.0], [11.0, 5.5], [17.3, 3.2], [27.8, 0.1], [0.0, 0.0]]),
        (4, [[0.0, 0.0], [11.0, 5.5], [27.8, 0.1], [0.0, 0.0]]),
    ],
)
def test_simplify_preserve_topology_documented_examples(
    vertices: int, expected: list[list[float]]
) -> None:
    result = geo(f"simplify_preserve_topology(to_polygon(a), {vertices})", ZIGZAG)
    assert result == {"type": "Polygon", "coordinates": [expected]}


def test_simplify_keeps_the_type_and_a_line_keeps_its_ends() -> None:
    line = "LINESTRING (0 0, 1 0.1, 2 -0.1, 3 5, 4 6, 5 7)"
    assert geo("simplify(to_line(a), 2)", line) == {
        "type": "LineString",
        "coordinates": [[0, 0], [5, 7]],
    }
    compiled = compile_expression("simplify(to_multiline(a), 3)", COLUMNS)
    assert compiled.output_type.value == "multiline"


def test_simplify_vertex_count_over_the_maximum_is_a_cell_error() -> None:
    error = error_of("simplify(to_polygon(a), 500001)", ZIGZAG)
    assert error == {
        "type": "out_of_range",
        "english": "simplify: the vertex count must be a whole number from 0 to 500000",
        "data": {"value": 500001.0},
    }


def test_validate_geometry_documented_examples() -> None:
    closed = "POLYGON ((30 20, 45 40, 10 40, 30 20))"
    assert geo("validate_geometry(to_polygon(a))", closed) == {
        "type": "Polygon",
        "coordinates": [[[30, 20], [45, 40], [10, 40], [30, 20]]],
    }
    reason = (
        "Polygon Exterior is not closed or does not have >= 4 coordinates. "
        "See the repair_geometry function to fix this."
    )
    assert error_of("validate_geometry(to_polygon(a))", OPEN_TRIANGLE) == {
        "type": "invalid_geometry",
        "english": f"Geometry invariant violation: {reason}",
        "data": {
            "value": {"type": "Polygon", "coordinates": [[[30, 20], [45, 40], [10, 40], [20, 20]]]},
            "reason": reason,
        },
    }
    error = error_of("validate_geometry(to_multipolygon(a))", "MULTIPOLYGON (((30 20, 45 40)))")
    assert error["data"]["reason"] == reason


@pytest.mark.parametrize(
    ("expr", "wkt", "expected"),
    [
        (
            "to_polygon",
            OPEN_TRIANGLE,
            {
                "type": "Polygon",
                "coordinates": [[[30, 20], [45, 40], [10, 40], [20, 20], [30, 20]]],
            },
        ),
        (
            "to_multipolygon",
            "MULTIPOLYGON (((30 20)))",
            {"type": "MultiPolygon", "coordinates": [[[[30, 20], [30, 20], [30, 20], [30, 20]]]]},
        ),
        (
            "to_line",
            "LINESTRING (30 10)",
            {"type": "LineString", "coordinates": [[30, 10], [30, 10]]},
        ),
        (
            "to_multiline",
            "MULTILINESTRING ((10 10),(40 40, 30 30))",
            {
                "type": "MultiLineString",
                "coordinates": [[[10, 10], [10, 10]], [[40, 40], [30, 30]]],
            },
        ),
    ],
)
def test_repair_geometry_documented_examples(expr: str, wkt: str, expected: object) -> None:
    assert geo(f"repair_geometry({expr}(a))", wkt) == expected
    assert geo(f"validate_geometry(repair_geometry({expr}(a)))", wkt) == expected


def test_haversine_distance_documented_examples() -> None:
    # Numbers are exact decimals: the documented value, digit for digit.
    line = ok("haversine_distance(to_line(a))", "LINESTRING (1 2, 1 3)")
    assert line == Decimal("111195.0802335329")
    multi = "MULTILINESTRING ((10 10, 20 20, 10 40), (40 40, 30 30, 40 20, 30 10))"
    assert ok("haversine_distance(to_multiline(a))", multi) == Decimal("8443359.868161995")


def test_is_within_and_ensure_within() -> None:
    area = "MULTIPOLYGON (((0 0, 10 0, 10 10, 0 10, 0 0)))"
    assert ok("is_within(to_point(a), to_multipolygon(b))", "POINT (5 5)", area) is True
    assert ok("is_within(to_point(a), to_multipolygon(b))", "POINT (15 5)", area) is False
    assert ok("is_within(to_point(a), to_multipolygon(b))", None, area) is None
    inside = geo("ensure_within(to_point(a), to_multipolygon(b))", "POINT (5 5)", area)
    assert inside == {"type": "Point", "coordinates": [5.0, 5.0]}
    assert error_of("ensure_within(to_point(a), to_multipolygon(b))", "POINT (15 5)", area) == {
        "type": "not_within",
        "english": "The point is not within the multipolygon",
        "data": {"value": {"type": "Point", "coordinates": [15.0, 5.0]}},
    }


def test_from_polyline_documented_examples() -> None:
    encoded = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
    line = {
        "type": "LineString",
        "coordinates": [[-120.2, 38.5], [-120.95, 40.7], [-126.453, 43.252]],
    }
    assert geo("from_polyline(a, 5)", encoded) == line
    assert geo("from_polyline(a)", encoded) == line
    assert geo("from_polyline(a, 6)", encoded)["coordinates"][0] == [-12.02, 3.85]


def test_from_polyline_rejects_text_that_is_not_a_polyline() -> None:
    assert error_of("from_polyline(a)", "hello world") == {
        "type": "type_conversion_failed",
        "english": 'Unable to convert "hello world" from text to line',
        "data": {"value": "hello world", "source_type": "text", "target_type": "line"},
    }
    assert run("from_polyline(a)", "   ") == (None, None)


def test_an_argument_error_comes_before_the_function() -> None:
    error = error_of("centroid(to_polygon(a))", "not wkt")
    assert error["english"] == 'Unable to convert "not wkt" from text to polygon'
