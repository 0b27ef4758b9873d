"""set_projection, reproject and reproject_to_wgs84 with pyproj's bundled PROJ data."""

from __future__ import annotations

import pytest

from dsmsyncd.server.transforms import ExpressionError, compile_expression
from tests.server.unit.transform_runner import COLUMNS, error_of, geo, ok

# Washington State Plane North (US feet); (1270000, 230000) is in central Seattle.
STATE_PLANE = "EPSG:2926"
ALBERS = (
    "+proj=aea +lat_1=34 +lat_2=47 +lat_0=43 +lon_0=-120 +x_0=0 +y_0=0 "
    "+ellps=GRS80 +datum=NAD83 +units=m +no_defs"
)


def test_set_projection_records_the_projection_without_moving_points() -> None:
    assert geo(f"set_projection(to_point(a), '{STATE_PLANE}')", "POINT (1000 2000)") == {
        "type": "Point",
        "coordinates": [1000.0, 2000.0],
        "crs": {"type": "name", "properties": {"name": STATE_PLANE}},
    }
    assert geo("set_projection(to_point(a), 'EPSG:4326')", "POINT (1 2)") == {
        "type": "Point",
        "coordinates": [1.0, 2.0],
    }


def test_reproject_to_wgs84_from_a_set_projection() -> None:
    expr = f"reproject_to_wgs84(set_projection(to_point(a), '{STATE_PLANE}'))"
    point = geo(expr, "POINT (1270000 230000)")
    assert set(point) == {"type", "coordinates"}  # WGS84 carries no crs
    lon, lat = point["coordinates"]
    assert (round(lon, 4), round(lat, 4)) == (-122.3354, 47.6206)


def test_reproject_from_wgs84_to_a_proj4_string() -> None:
    point = geo(f"reproject(to_point(a), '{ALBERS}')", "POINT (-120 43)")
    assert point["coordinates"] == [0.0, 0.0]  # the projection's origin
    assert point["crs"] == {"type": "name", "properties": {"name": ALBERS}}
    line = geo("reproject(to_line(a), 'EPSG:3857')", "LINESTRING (0 0, 1 1)")
    assert [[round(c) for c in xy] for xy in line["coordinates"]] == [[0, 0], [111319, 111325]]
    assert ok("reproject_to_wgs84(to_point(a))", None) is None


def test_a_point_outside_the_projection_is_a_cell_error() -> None:
    assert error_of("reproject(to_point(a), 'EPSG:3857')", "POINT (0 91)") == {
        "type": "reprojection_failed",
        "english": "The coordinate [0.0, 91.0] is outside the projection's domain",
        "data": {},
    }


def test_an_unknown_projection_fails_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("reproject(to_point(a), 'bogus')", COLUMNS)
    assert caught.value.reason == "syntax"
    assert caught.value.message.startswith("reproject: unknown projection 'bogus': ")
    with pytest.raises(ExpressionError) as caught:
        compile_expression("set_projection(to_point(a), a)", COLUMNS)
    assert caught.value.message == (
        "set_projection: the projection (argument 2) must be a text literal"
    )
