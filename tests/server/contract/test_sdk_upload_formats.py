"""Every upload format through the official SDK's own methods, read back over SODA.

``socrata.create(...).tsv(f)``, ``.xls(f)``, ``.xlsx(f)``, ``.geojson(f)``, ``.kml(f)``
and ``.shapefile(f)`` upload a small real file of that format (made in the test by the
library that writes it, ``tests/server/support/format_files.py``), wait for the guessed
output schema, apply it, and a SODA client reads the rows a hosted site would give.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import requests
from socrata import Socrata
from socrata.authorization import Authorization

from tests.server.contract.https_server import PASSWORD, USER, ServedHttps
from tests.server.support import format_files

pytestmark = pytest.mark.sdk

SHEET = [
    ["Name", "Count", "Opened", "Ratio", "Open"],
    ["Ann", 7, dt.date(2024, 1, 31), 0.25, True],
    ["Bob", 12, dt.datetime(2024, 2, 1, 8, 30), 2.5, False],
]
SHEET_ROWS = [
    {"name": "Ann", "count": "7", "opened": "2024-01-31T00:00:00", "ratio": "0.25", "open": True},
    {"name": "Bob", "count": "12", "opened": "2024-02-01T08:30:00", "ratio": "2.5", "open": False},
]


def _socrata(server: ServedHttps) -> Socrata:
    auth = Authorization(server.domain, USER, PASSWORD)
    auth.verify = str(server.ca_path)
    return Socrata(auth)


def _publish(server: ServedHttps, path: Path, method: str) -> tuple[str, dict[str, Any]]:
    """Create a dataset with the SDK's ``method`` for the file, apply it; (id, output)."""
    with path.open("rb") as file:
        create = _socrata(server).create(name=path.stem, description="formats")
        revision, output = getattr(create, method)(file)
    assert output.attributes["error_count"] == 0
    job = revision.apply(output_schema=output).wait_for_finish()
    assert job.attributes["status"] == "successful", job.attributes
    return revision.attributes["fourfour"], output.attributes


def _rows(server: ServedHttps, fourfour: str, **params: str) -> list[dict[str, Any]]:
    response = requests.get(
        f"{server.url}/resource/{fourfour}.json",
        params=params,
        auth=(USER, PASSWORD),
        verify=str(server.ca_path),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def _without_nulls(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without empty cells, however the SODA side spells them (absent, null, ""),
    and timestamps without a zero fraction (``.000`` or none: both are this instant)."""
    return [
        {
            k: v.removesuffix(".000") if isinstance(v, str) else v
            for k, v in row.items()
            if v not in (None, "")
        }
        for row in rows
    ]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_sdk_tsv_is_split_on_tabs(https_server: ServedHttps, tmp_path: Path) -> None:
    data = b"city\tpopulation\tnote\nOslo\t709037\tcapital, Norway\nBergen\t291940\t\n"
    fourfour, output = _publish(https_server, _write(tmp_path, "cities.tsv", data), "tsv")
    assert [c["field_name"] for c in output["output_columns"]] == ["city", "population", "note"]
    rows = _without_nulls(_rows(https_server, fourfour, **{"$order": "city"}))
    assert rows == [
        {"city": "Bergen", "population": "291940"},
        {"city": "Oslo", "population": "709037", "note": "capital, Norway"},
    ]


@pytest.mark.parametrize(
    ("method", "name", "make"),
    [
        ("xlsx", "people.xlsx", format_files.xlsx_bytes),
        ("xls", "people.xls", format_files.xls_bytes),
    ],
)
def test_sdk_workbook_first_sheet_typed_cells(
    https_server: ServedHttps, tmp_path: Path, method: str, name: str, make: Any
) -> None:
    data = make({"People": SHEET, "Other": [["x"], ["not read"]]})
    fourfour, output = _publish(https_server, _write(tmp_path, name, data), method)
    types = {c["field_name"]: c["transform"]["output_soql_type"] for c in output["output_columns"]}
    assert types == {
        "name": "text",
        "count": "number",
        "opened": "calendar_date",
        "ratio": "number",
        "open": "checkbox",
    }
    assert _without_nulls(_rows(https_server, fourfour, **{"$order": "name"})) == SHEET_ROWS


def test_sdk_geojson_features_become_rows(https_server: ServedHttps, tmp_path: Path) -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}
    parts = {"type": "MultiPolygon", "coordinates": [[[[5, 5], [6, 5], [6, 6], [5, 5]]]]}
    data = format_files.geojson_bytes(
        [(square, {"name": "square", "rank": 1}), (parts, {"name": "parts", "rank": 2})]
    )
    fourfour, output = _publish(https_server, _write(tmp_path, "zones.geojson", data), "geojson")
    types = {c["field_name"]: c["transform"]["output_soql_type"] for c in output["output_columns"]}
    assert types == {"the_geom": "multipolygon", "name": "text", "rank": "number"}
    rows = _rows(https_server, fourfour, **{"$order": "rank"})
    assert rows[0]["the_geom"] == {
        "type": "MultiPolygon",
        "coordinates": [[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]],
    }
    assert [(r["name"], r["rank"]) for r in rows] == [("square", "1"), ("parts", "2")]
    assert rows[1]["the_geom"]["type"] == "MultiPolygon"


def test_sdk_kml_placemarks_become_rows(https_server: ServedHttps, tmp_path: Path) -> None:
    data = format_files.kml_bytes(
        ["POINT (10.75 59.91)", "POINT (5.32 60.39)"], {"name": ["Oslo", "Bergen"]}
    )
    fourfour, output = _publish(https_server, _write(tmp_path, "cities.kml", data), "kml")
    fields = [c["field_name"] for c in output["output_columns"]]
    assert fields[0] == "the_geom"
    assert "name" in fields
    rows = _rows(https_server, fourfour, **{"$order": "name"})
    assert [(r["name"], r["the_geom"]) for r in rows] == [
        ("Bergen", {"type": "Point", "coordinates": [5.32, 60.39]}),
        ("Oslo", {"type": "Point", "coordinates": [10.75, 59.91]}),
    ]


def test_sdk_zipped_shapefile_reprojected_to_wgs84(
    https_server: ServedHttps, tmp_path: Path
) -> None:
    # Web Mercator metres: (111319.49, 0) is 1 degree east of (0, 0) on the equator.
    data = format_files.shapefile_zip_bytes(
        ["POINT (111319.49079327357 0)", "POINT (0 0)"],
        {"code": ["east", "origin"], "area": [1.5, 2.0]},
        crs="EPSG:3857",
    )
    fourfour, output = _publish(https_server, _write(tmp_path, "sites.zip", data), "shapefile")
    types = {c["field_name"]: c["transform"]["output_soql_type"] for c in output["output_columns"]}
    assert types == {"the_geom": "point", "code": "text", "area": "number"}
    rows = _rows(https_server, fourfour, **{"$order": "code"})
    assert [(r["code"], r["area"]) for r in rows] == [("east", "1.5"), ("origin", "2")]
    east = rows[0]["the_geom"]["coordinates"]
    assert east == pytest.approx([1.0, 0.0], abs=1e-9)
