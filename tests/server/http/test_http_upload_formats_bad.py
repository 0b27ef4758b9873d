"""Bad files of every format fail their source with failure details that say what is wrong.

Each file is real and broken the way files break: a truncated workbook, a sheet that is
empty or not there, JSON that is cut off or is not GeoJSON, a zip without a shapefile,
a geometry no column can hold. The source fails (``failed_at``, no schemas) with
``failure_details.key == "unparsable_file"`` and a message naming the problem; the
server goes on serving.
"""

from __future__ import annotations

import io
import zipfile

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.server.http.format_flows import GEOJSON, KML, XLS, XLSX, ZIP, failure, upload_as
from tests.server.support import format_files


async def _failure_message(
    server: RunningServer,
    api: aiohttp.ClientSession,
    data: bytes,
    filename: str,
    ctype: str,
    **options: object,
) -> str:
    source = await upload_as(
        server, api, data, filename=filename, content_type=ctype, parse_options=dict(options)
    )
    details = failure(source)
    assert details["key"] == "unparsable_file"
    message: str = details["message"]
    return message


async def test_truncated_xlsx_fails_naming_the_workbook(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.xlsx_bytes({"Data": [["a"], [1]]})[:300]
    message = await _failure_message(server, api, data, "broken.xlsx", XLSX)
    assert message.startswith("The file cannot be read as an XLSX workbook (")
    assert "damaged" in message


async def test_xls_that_is_not_a_workbook_fails(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    message = await _failure_message(server, api, b"just,some,text\n", "fake.xls", XLS)
    assert message.startswith("The file cannot be read as an XLS workbook (")


async def test_empty_sheet_fails_naming_the_sheet(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.xlsx_bytes({"Empty": []})
    message = await _failure_message(server, api, data, "empty.xlsx", XLSX)
    assert message == (
        "The sheet 'Empty' of the XLSX workbook is empty: put a header row and data rows "
        "in it, or choose another sheet with sheet_name."
    )


async def test_unknown_sheet_name_lists_the_sheets(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.xlsx_bytes({"One": [["a"], [1]], "Two": [["b"], [2]]})
    message = await _failure_message(server, api, data, "two.xlsx", XLSX, sheet_name="Three")
    assert message.startswith(
        "The XLSX workbook has no sheet named 'Three'; its sheets are 'One', 'Two'."
    )


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (
            b'{"type": "FeatureCollection", "features": [{"type": "Feature", ',
            "The file is not a valid GeoJSON file: it is not valid JSON: ",
        ),
        (
            b'{"rows": [1, 2]}',
            'The file is not a valid GeoJSON file: its top-level "type" is null, not '
            '"FeatureCollection" or "Feature".',
        ),
    ],
)
async def test_invalid_geojson_says_why(
    server: RunningServer, api: aiohttp.ClientSession, data: bytes, said: str
) -> None:
    message = await _failure_message(server, api, data, "bad.geojson", GEOJSON)
    assert message.startswith(said)


async def test_zip_without_shapefile_lists_what_it_holds(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "no shapes here")
    message = await _failure_message(server, api, out.getvalue(), "shapes.zip", ZIP)
    assert message == (
        "The zip archive has no .shp file: it holds readme.txt. Upload a zip that "
        "contains a .shp file (with its .shx and .dbf)."
    )


async def test_truncated_kml_fails_without_naming_server_paths(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = format_files.kml_bytes(["POINT (1 2)"], {"name": ["a"]})[:200]
    message = await _failure_message(server, api, data, "cut.kml", KML)
    assert message.startswith("The file is not a valid KML file: ")
    assert "/uploads/" not in message
    assert "source.bin" not in message


async def test_geometry_collection_fails_naming_the_feature(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    collection = {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [1, 2]},
        ],
    }
    data = format_files.geojson_bytes(
        [({"type": "Point", "coordinates": [0, 0]}, {}), (collection, {})]
    )
    message = await _failure_message(server, api, data, "mixed.geojson", GEOJSON)
    assert message == (
        "Feature 2 of layer 'mixed' is a GeometryCollection, which no dataset column can "
        "hold: split it into features of one geometry type each."
    )


async def test_server_keeps_serving_after_bad_files(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    await _failure_message(server, api, b"\x00garbage", "x.xlsx", XLSX)
    data = format_files.xlsx_bytes({"Fine": [["a"], [1]]})
    source = await upload_as(server, api, data, filename="ok.xlsx", content_type=XLSX)
    assert source["resource"]["failed_at"] is None
    assert source["resource"]["schemas"][0]["name"] == "Fine"
