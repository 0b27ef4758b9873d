"""The geometry, location and parsing functions, end to end over HTTP.

A CSV is uploaded, transformed with the functions the local server gained for issue 8,
applied, and read back over SODA, exactly as a client staging its transforms would.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    assert_refused,
    call,
    output_column,
    parsed_source,
    poll,
    schema_link,
    settled,
    transform,
)

SQUARE = "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))"
ELL = "POLYGON ((0 0, 4 0, 4 1, 1 1, 1 4, 0 4, 0 0))"
OPEN = "POLYGON ((30 20, 45 40, 10 40, 20 20))"
TRAIL = "_p~iF~ps|U_ulLnnqC_mqNvxq`@"
PLACES_CSV = (
    "id,area,lat,lon,city,email\n"
    f'1,"{SQUARE}",47.5,-122.25,Seattle,ann@example.org\n'
    f'2,"{ELL}",40.75,-73.5,New York,bob@example.COM\n'
).encode()
LOCATION = (
    "make_location('1 Main St', `city`, 'WA', '98101', "
    "make_point(to_number(`lat`), to_number(`lon`)))"
)


async def transformed(
    server: RunningServer, api: aiohttp.ClientSession, data: bytes, columns: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Upload `data`, transform it into `columns`: revision, source, settled output schema."""
    revision, source = await parsed_source(server, api, data)
    resp = await transform(api, source, columns)
    assert resp.status == 201, await resp.text()
    isid = source["resource"]["schemas"][0]["id"]
    latest = await settled(server, api, schema_link(source, "latest_output", input_schema_id=isid))
    return revision, source, latest


async def applied_rows(
    api: aiohttp.ClientSession, revision: dict[str, Any], output_schema_id: int, query: str
) -> list[dict[str, Any]]:
    """Apply the output schema, then the dataset's rows over SODA."""
    body = {"output_schema_id": output_schema_id}
    status, job = await call(api, "PUT", revision["links"]["apply"], body)
    assert status == 200, job
    finished = await poll(api, job["links"]["show"], "finished_at")
    assert finished["status"] == "successful", finished
    fourfour = revision["resource"]["fourfour"]
    status, rows = await call(api, "GET", f"/resource/{fourfour}.json?{query}")
    assert status == 200, rows
    assert isinstance(rows, list)
    return rows


async def test_geometry_and_location_functions_publish_and_read_back(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    columns = [
        output_column("id", "to_number(`id`)", 0),
        output_column("center", "centroid(to_polygon(`area`))", 1),
        output_column("inside", "is_within(make_point(2, 2), to_polygon(`area`))", 2),
        output_column("rough", "simplify(to_polygon(`area`), 4)", 3),
        output_column("place", LOCATION, 4),
        output_column("place_city", f"location_city({LOCATION})", 5),
        output_column("host", "email_parse(`email`).host || '/' || email_parse(`email`).tld", 6),
        output_column("trail", f"from_polyline('{TRAIL}')", 7),
        output_column(
            "trail_km", f"round(haversine_distance(from_polyline('{TRAIL}')) / 1000, 0)", 8
        ),
    ]
    revision, _source, latest = await transformed(server, api, PLACES_CSV, columns)
    out = latest["resource"]
    types = {c["field_name"]: c["transform"]["output_soql_type"] for c in out["output_columns"]}
    assert types == {
        "id": "number",
        "center": "point",
        "inside": "checkbox",
        "rough": "polygon",
        "place": "location",
        "place_city": "text",
        "host": "text",
        "trail": "line",
        "trail_km": "number",
    }
    assert out["error_count"] == 0
    rows = await applied_rows(api, revision, out["id"], "$order=id")
    trail = {
        "type": "LineString",
        "coordinates": [[-120.2, 38.5], [-120.95, 40.7], [-126.453, 43.252]],
    }
    human = '{"address":"1 Main St","city":"%s","state":"WA","zip":"98101"}'
    assert rows == [
        {
            "id": "1",
            "center": {"type": "Point", "coordinates": [5.0, 5.0]},
            "inside": True,
            "rough": {"type": "Polygon", "coordinates": [[[0, 0], [10, 0], [10, 10], [0, 0]]]},
            "place": {
                "latitude": "47.5",
                "longitude": "-122.25",
                "human_address": human % "Seattle",
            },
            "place_city": "Seattle",
            "host": "example.org/ORG",
            "trail": trail,
            "trail_km": "789",
        },
        {
            "id": "2",
            "center": {"type": "Point", "coordinates": [1.3571428571428572, 1.3571428571428572]},
            "inside": False,
            "rough": {"type": "Polygon", "coordinates": [[[0, 0], [4, 1], [0, 4], [0, 0]]]},
            "place": {
                "latitude": "40.75",
                "longitude": "-73.5",
                "human_address": human % "New York",
            },
            "place_city": "New York",
            "host": "example.COM/COM",
            "trail": trail,
            "trail_km": "789",
        },
    ]


async def test_invalid_geometry_is_a_cell_error_and_the_row_is_left_out(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = f'id,area\n1,"{SQUARE}"\n2,"{OPEN}"\n'.encode()
    columns = [
        output_column("id", "to_number(`id`)", 0),
        output_column("area", "validate_geometry(to_polygon(`area`))", 1),
        output_column("fixed", "repair_geometry(to_polygon(`area`))", 2),
    ]
    revision, _source, latest = await transformed(server, api, data, columns)
    out = latest["resource"]
    assert out["error_count"] == 1
    assert [c["transform"]["error_count"] for c in out["output_columns"]] == [0, 1, 0]
    async with api.get(latest["links"]["schema_errors"]) as resp:
        assert resp.status == 200
        page = await resp.json()
    [error_row] = page[1:]
    cell = error_row["row"][1]["error"]
    reason = (
        "Polygon Exterior is not closed or does not have >= 4 coordinates. "
        "See the repair_geometry function to fix this."
    )
    assert cell["message"]["type"] == "invalid_geometry"
    assert cell["message"]["english"] == f"Geometry invariant violation: {reason}"
    assert cell["message"]["data"]["reason"] == reason
    assert error_row["row"][2] == {
        "ok": {
            "type": "Polygon",
            "coordinates": [[[30, 20], [45, 40], [10, 40], [20, 20], [30, 20]]],
        }
    }
    rows = await applied_rows(api, revision, out["id"], "$select=id&$order=id")
    assert rows == [{"id": "1"}]


async def test_new_functions_are_type_checked_and_literals_checked_at_transform_time(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    _revision, source = await parsed_source(server, api, PLACES_CSV)
    isid = source["resource"]["schemas"][0]["id"]
    url = schema_link(source, "transform", input_schema_id=isid)
    cases = {
        "centroid(to_line(`area`))": (
            "centroid does not accept argument 1 of type line; it expects multipolygon or polygon"
        ),
        "xml_pluck(`city`, 'city')": (
            "xml_pluck: cannot use the XPath 'city': the path must start with / or //"
        ),
        "location_zip(`city`)": (
            "location_zip does not accept argument 1 of type text; it expects location"
        ),
    }
    for expr, said in cases.items():
        body = {"output_columns": [output_column("bad", expr, 0)]}
        async with api.post(url, json=body) as resp:
            assert resp.status == 400, expr
            error = await resp.json()
        assert_refused(error, "transform_compilation_error", "column 'bad'", said)
