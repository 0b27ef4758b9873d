"""Small real files of every upload format, made with the libraries that write them.

Spreadsheets come from ``openpyxl`` (XLSX) and ``xlwt`` (XLS); geodata from ``pyogrio``
(GDAL) for KML and shapefiles, and from plain JSON for GeoJSON. Each file is built in
the test that uploads it, so a test shows exactly what it sends.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pyogrio.raw
import shapely
import xlwt

Rows = Sequence[Sequence[Any]]


def xlsx_bytes(sheets: dict[str, Rows]) -> bytes:
    """A workbook with one sheet per entry, in order, each holding its rows."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xls_bytes(sheets: dict[str, Rows]) -> bytes:
    """An Excel 97-2003 workbook; dates and datetimes get a date format, as Excel does."""
    workbook = xlwt.Workbook()
    date_style = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    time_style = xlwt.easyxf(num_format_str="YYYY-MM-DD HH:MM:SS")
    for name, rows in sheets.items():
        sheet = workbook.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    sheet.write(r, c, value, time_style)
                elif isinstance(value, dt.date):
                    sheet.write(r, c, value, date_style)
                elif value is not None:
                    sheet.write(r, c, value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def geojson_bytes(features: list[tuple[dict[str, Any] | None, dict[str, Any]]]) -> bytes:
    """A FeatureCollection of (geometry, properties) features."""
    collection = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": geometry, "properties": properties}
            for geometry, properties in features
        ],
    }
    return json.dumps(collection).encode()


def _written(
    driver: str, suffix: str, wkt: list[str], fields: dict[str, list[Any]], crs: str, layer: str
) -> dict[str, bytes]:
    """Files GDAL writes for one layer, by name (a shapefile is several)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{layer}{suffix}"
        geometry = shapely.to_wkb(shapely.from_wkt(wkt))
        geometry_type = shapely.from_wkt(wkt[0]).geom_type
        pyogrio.raw.write(
            str(path),
            geometry,
            field_data=[_column(v) for v in fields.values()],
            fields=list(fields),
            geometry_type=geometry_type,
            crs=crs,
            driver=driver,
            layer=layer,
        )
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir()}


def _column(values: list[Any]) -> Any:
    """A field's values as GDAL wants them: strings as objects, numbers as numbers."""
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=object)
    return np.array(values)


def kml_bytes(wkt: list[str], fields: dict[str, list[Any]], layer: str = "places") -> bytes:
    return _written("KML", ".kml", wkt, fields, "EPSG:4326", layer)[f"{layer}.kml"]


def kmz_bytes(wkt: list[str], fields: dict[str, list[Any]], layer: str = "places") -> bytes:
    return _zipped({"doc.kml": kml_bytes(wkt, fields, layer)})


def shapefile_zip_bytes(
    wkt: list[str], fields: dict[str, list[Any]], *, crs: str = "EPSG:4326", layer: str = "parcels"
) -> bytes:
    """A zip of the .shp, .shx, .dbf and .prj (and whatever else GDAL writes)."""
    return _zipped(_written("ESRI Shapefile", ".shp", wkt, fields, crs, layer))


def _zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()
