"""Rows of a SODA read as a hosted site writes them: JSON, CSV, GeoJSON, CSV export.

The rules of dev.socrata.com's datatype and format pages, in one place:

* JSON rows omit null fields; numbers are strings; checkboxes are booleans.
* Floating timestamps always carry milliseconds (``2014-10-13T00:00:00.000``), fixed
  ones too and end in ``Z`` (``2014-10-13T00:00:00.000Z``), whatever is stored.
* CSV (``.csv``) quotes every value and the header; a null is an empty, unquoted cell.
* GeoJSON (``.geojson``) is a FeatureCollection: each row's first geometry column is
  the feature's geometry and the other fields are its properties.
* The CSV export (``/api/views/{id}/rows.csv?accessType=DOWNLOAD``) is headed by the
  columns' display names and writes timestamps as ``MM/DD/YYYY hh:mm:ss AM`` and
  points as WKT, as a hosted export does.

Every other value is the shared wire form of ``soql_types.to_wire``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from dsmsyncd.server.soql_types import GEOMETRY_TYPES, SoqlType, to_wire

# The public SODA datatype names (X-SODA2-Types) where they differ from SoQL's.
_SODA_NAMES = {SoqlType.CALENDAR_DATE: "floating_timestamp", SoqlType.DATE: "fixed_timestamp"}
_CRS84 = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
Field = tuple[str, SoqlType]  # (output name, SoQL type) of one selected column


def soda_type_name(soql_type: SoqlType) -> str:
    return _SODA_NAMES.get(soql_type, soql_type.value)


def soda_value(soql_type: SoqlType, value: Any) -> Any:
    """A stored value as a SODA JSON value (``None`` stays ``None``)."""
    if value is None:
        return None
    if soql_type is SoqlType.CALENDAR_DATE and isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds")
    if soql_type is SoqlType.DATE and isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return to_wire(soql_type, value)


def json_rows(rows: Iterable[tuple[Any, ...]], fields: Sequence[Field]) -> list[dict[str, Any]]:
    """Rows as SODA JSON objects: null fields are left out."""
    out = []
    for row in rows:
        out.append(
            {
                name: soda_value(kind, value)
                for (name, kind), value in zip(fields, row, strict=True)
                if value is not None
            }
        )
    return out


def geojson(rows: Iterable[tuple[Any, ...]], fields: Sequence[Field]) -> dict[str, Any]:
    """A FeatureCollection of the rows; the first geometry column is the geometry."""
    where = next((i for i, (_, kind) in enumerate(fields) if kind in GEOMETRY_TYPES), None)
    features = []
    for row in rows:
        geometry = soda_value(fields[where][1], row[where]) if where is not None else None
        properties = {
            name: soda_value(kind, value)
            for i, ((name, kind), value) in enumerate(zip(fields, row, strict=True))
            if i != where and value is not None
        }
        features.append({"type": "Feature", "geometry": geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features, "crs": _CRS84}


def csv_line(cells: Iterable[str | None]) -> str:
    """One CSV line, every value quoted, a null as an empty cell."""
    return ",".join("" if c is None else '"' + c.replace('"', '""') + '"' for c in cells) + "\n"


def csv_rows(rows: Iterable[tuple[Any, ...]], fields: Sequence[Field], *, export: bool) -> bytes:
    """Rows as SODA CSV lines (``export``: as the CSV export writes them)."""
    cell = _export_cell if export else _csv_cell
    return "".join(
        csv_line(cell(kind, value) for (_, kind), value in zip(fields, row, strict=True))
        for row in rows
    ).encode()


def _csv_cell(soql_type: SoqlType, value: Any) -> str | None:
    wire = soda_value(soql_type, value)
    if wire is None:
        return None
    if isinstance(wire, bool):
        return "true" if wire else "false"
    if isinstance(wire, str):
        return wire
    return str(json.dumps(wire, separators=(",", ":")))


def _export_cell(soql_type: SoqlType, value: Any) -> str | None:
    if isinstance(value, dt.datetime) and soql_type in (SoqlType.CALENDAR_DATE, SoqlType.DATE):
        when: dt.datetime = value.astimezone(dt.UTC) if value.tzinfo is not None else value
        return when.strftime("%m/%d/%Y %I:%M:%S %p")
    if soql_type is SoqlType.POINT:
        point = soda_value(soql_type, value)
        if isinstance(point, dict) and isinstance(point.get("coordinates"), list):
            x, y = point["coordinates"][:2]
            return f"POINT ({x} {y})"
    return _csv_cell(soql_type, value)
