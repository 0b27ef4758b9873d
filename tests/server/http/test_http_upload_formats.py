"""Workbooks and geodata over raw HTTP: sheets, layers, KMZ, and what the schemas say.

The SDK flows (``tests/server/contract/test_sdk_upload_formats.py``) cover one file of
each format end to end; these cover the choices inside a format: which sheet, how many
layers, geometry types, header options on a sheet.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.format_flows import (
    GEOJSON,
    KML,
    XLSX,
    ZIP,
    field_names,
    parsed_rows,
    upload_as,
)
from tests.server.support import format_files


async def test_sheet_name_picks_the_sheet_and_names_the_input_schema(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.xlsx_bytes({"Intro": [["about"], ["x"]], "Data": [["k", "v"], [1, 2]]})
    first = await upload_as(server, api, data, filename="w.xlsx", content_type=XLSX)
    chosen = await upload_as(
        server,
        api,
        data,
        filename="w.xlsx",
        content_type=XLSX,
        parse_options={"sheet_name": "Data"},
    )
    assert chosen["resource"]["parse_options"]["sheet_name"] == "Data"
    assert "sheet_name" not in first["resource"]["parse_options"]
    schema, rows = await parsed_rows(api, first)
    assert (schema["name"], field_names(schema), rows) == ("Intro", ["about"], [["x"]])
    schema, rows = await parsed_rows(api, chosen)
    assert (schema["name"], field_names(schema), rows) == ("Data", ["k", "v"], [["1", "2"]])


async def test_sheet_header_options_and_cell_text(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    sheet: list[list[Any]] = [
        ["Monthly report", None, None],
        ["When", "Amount", "Big"],
        [dt.datetime(2024, 3, 1, 9, 15, 30), 1234567.0, 12345678901234567890],
        [dt.date(2024, 3, 2), 0.1, None],
    ]
    data = format_files.xlsx_bytes({"Report": sheet})
    source = await upload_as(
        server,
        api,
        data,
        filename="r.xlsx",
        content_type=XLSX,
        parse_options={"header_count": 2, "column_header": 2},
    )
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["when", "amount", "big"]
    assert [c["guessed_soql_type"] for c in schema["input_columns"]] == [
        "calendar_date",
        "number",
        "number",
    ]
    assert schema["total_rows"] == 2
    assert [row[0][:19] for row in rows] == ["2024-03-01T09:15:30", "2024-03-02T00:00:00"]


async def test_geojson_mixed_families_give_one_input_schema_per_family(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.geojson_bytes(
        [
            ({"type": "Point", "coordinates": [1, 2]}, {"name": "a"}),
            ({"type": "MultiPoint", "coordinates": [[3, 4], [5, 6]]}, {"name": "b"}),
            ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, {"name": "c"}),
            (None, {"name": "d"}),
        ]
    )
    source = await upload_as(server, api, data, filename="mix.geojson", content_type=GEOJSON)
    points, point_rows = await parsed_rows(api, source, 0)
    lines, line_rows = await parsed_rows(api, source, 1)
    assert points["name"] == "mix (point)"
    assert lines["name"] == "mix (line)"
    assert [(c["field_name"], c["soql_type"]) for c in points["input_columns"]] == [
        ("the_geom", "multipoint"),
        ("name", "text"),
    ]
    assert point_rows == [
        [{"type": "MultiPoint", "coordinates": [[1.0, 2.0]]}, "a"],
        [{"type": "MultiPoint", "coordinates": [[3.0, 4.0], [5.0, 6.0]]}, "b"],
        [None, "d"],
    ]
    assert lines["input_columns"][0]["soql_type"] == "line"
    assert line_rows == [[{"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]}, "c"]]


async def test_kmz_reads_the_kml_inside(server: RunningServer, api: aiohttp.ClientSession) -> None:
    data = format_files.kmz_bytes(["POINT (10.75 59.91)"], {"name": ["Oslo"]})
    source = await upload_as(server, api, data, filename="c.kmz", content_type=KML)
    schema, rows = await parsed_rows(api, source)
    assert schema["name"] == "places"
    assert schema["input_columns"][0]["soql_type"] == "point"
    names = field_names(schema)
    assert rows[0][0] == {"type": "Point", "coordinates": [10.75, 59.91]}
    assert rows[0][names.index("name")] == "Oslo"


async def test_shapefile_zip_with_two_layers_gives_two_input_schemas(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    import io
    import zipfile

    first = format_files.shapefile_zip_bytes(["POINT (1 2)"], {"code": ["a"]}, layer="wells")
    second = format_files.shapefile_zip_bytes(
        ["LINESTRING (0 0, 1 1)"], {"code": ["b"]}, layer="pipes"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as merged:
        for part in (first, second):
            with zipfile.ZipFile(io.BytesIO(part)) as archive:
                for name in archive.namelist():
                    merged.writestr(name, archive.read(name))
    source = await upload_as(server, api, out.getvalue(), filename="s.zip", content_type=ZIP)
    schemas = sorted(source["resource"]["schemas"], key=lambda s: s["id"])
    assert [(s["name"], s["input_columns"][0]["soql_type"]) for s in schemas] == [
        ("wells", "point"),
        ("pipes", "line"),
    ]
    _schema, rows = await parsed_rows(api, source, 1)
    assert rows == [[{"type": "LineString", "coordinates": [[0.0, 0.0], [1.0, 1.0]]}, "b"]]
