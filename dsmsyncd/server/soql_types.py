"""SoQL types as the local server stores and serves them.

One table decides, for every SoQL type, the DuckDB type its values are stored in and
how a stored value is written on the wire (JSON cells, SODA rows, CSV). The transform
compiler, the row store and the HTTP layer all read this table, so that a value has
one representation from the expression that makes it to the reader who reads it.

Wire formats follow the protocol digest (§1.9): numbers are strings, checkboxes are
JSON booleans, floating timestamps are ``YYYY-MM-DDTHH:MM:SS[.fff]``, fixed timestamps
end in ``Z``, geometries are GeoJSON objects, url is ``{url, description}``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
from enum import StrEnum
from typing import Any

from dsmsyncd.server import json_depth


class SoqlType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    CHECKBOX = "checkbox"
    CALENDAR_DATE = "calendar_date"  # floating timestamp
    DATE = "date"  # fixed timestamp, timezone-aware
    POINT = "point"
    MULTIPOINT = "multipoint"
    LINE = "line"
    MULTILINE = "multiline"
    POLYGON = "polygon"
    MULTIPOLYGON = "multipolygon"
    LOCATION = "location"
    URL = "url"
    JSON = "json"
    NULL = "null"  # the type of a bare `null` literal before unification


GEOMETRY_TYPES = frozenset(
    {
        SoqlType.POINT,
        SoqlType.MULTIPOINT,
        SoqlType.LINE,
        SoqlType.MULTILINE,
        SoqlType.POLYGON,
        SoqlType.MULTIPOLYGON,
    }
)

# Values held as JSON text in a VARCHAR column, parsed back into JSON on the wire.
JSON_TEXT_TYPES = GEOMETRY_TYPES | {SoqlType.LOCATION, SoqlType.URL, SoqlType.JSON}

# Numbers are exact decimals, as on a hosted site (PostgreSQL numeric), but DuckDB's
# DECIMAL holds at most 38 digits: a fixed scale of 18 keeps 18 digits after the point
# (every double printed in full, 15-decimal coordinates) and 20 before it (every
# 64-bit id). A value beyond either is a cell error, never a rounded or changed value
# (``transforms.numbers``); computed results (division, powers) round to the scale.
NUMBER_PRECISION = 38
NUMBER_SCALE = 18
NUMBER_SQL_TYPE = f"DECIMAL({NUMBER_PRECISION},{NUMBER_SCALE})"
NUMBER_INTEGER_DIGITS = NUMBER_PRECISION - NUMBER_SCALE

DUCKDB_TYPES: dict[SoqlType, str] = {
    SoqlType.TEXT: "VARCHAR",
    SoqlType.NUMBER: NUMBER_SQL_TYPE,
    SoqlType.CHECKBOX: "BOOLEAN",
    SoqlType.CALENDAR_DATE: "TIMESTAMP",
    SoqlType.DATE: "TIMESTAMPTZ",
    SoqlType.NULL: "VARCHAR",
    **{t: "VARCHAR" for t in JSON_TEXT_TYPES},
}


def duckdb_type(soql_type: SoqlType) -> str:
    return DUCKDB_TYPES[soql_type]


def format_number(value: decimal.Decimal | float | int) -> str:
    """A number as SODA writes it: plain digits, no exponent, no trailing zeros.

    ``"0.3"``, ``"2"`` (not ``"2.0"``), ``"12345678901234567"``. A float comes from a
    data directory written before numbers were decimals; it is shown by its shortest
    round-trip text, the value it was meant to be. :func:`number_text_sql` is the same
    rule in SQL (for ``to_text`` and ``||``).
    """
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        value = decimal.Decimal(repr(value))
    elif isinstance(value, int):
        return str(value)
    if value.is_zero():
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def number_text_sql(value_sql: str) -> str:
    """SQL for :func:`format_number` of a stored number (a ``NUMBER_SQL_TYPE`` value)."""
    return (
        f"(CASE WHEN {value_sql} = trunc({value_sql}) THEN CAST(trunc({value_sql}) AS VARCHAR) "
        f"ELSE rtrim(CAST({value_sql} AS VARCHAR), '0') END)"
    )


def double_to_number_sql(value_sql: str) -> str:
    """SQL converting a DOUBLE to a stored number through its shortest round-trip text."""
    return f"TRY_CAST(CAST({value_sql} AS VARCHAR) AS {NUMBER_SQL_TYPE})"


def format_floating(value: dt.datetime) -> str:
    text = value.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return text[:-4] if text.endswith(".000") else text


def format_fixed(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return format_floating(value) + "Z"


def to_wire(soql_type: SoqlType, value: Any) -> Any:
    """A stored DuckDB value as the JSON value a client reads (``None`` stays ``None``)."""
    if value is None:
        return None
    if soql_type is SoqlType.NUMBER:
        return format_number(value)
    if soql_type is SoqlType.CHECKBOX:
        return bool(value)
    if soql_type is SoqlType.CALENDAR_DATE:
        return format_floating(value)
    if soql_type is SoqlType.DATE:
        return format_fixed(value)
    if soql_type in JSON_TEXT_TYPES:
        if not isinstance(value, str):
            return value
        try:
            return json_depth.loads(value)
        except json_depth.TooDeep:
            return value  # served as its JSON text, which the reply can always encode
    return str(value)


def to_csv_text(soql_type: SoqlType, value: Any) -> str:
    """A stored value as one CSV cell: JSON-valued types are written as compact JSON."""
    wire = to_wire(soql_type, value)
    if wire is None:
        return ""
    if isinstance(wire, bool):
        return "true" if wire else "false"
    if isinstance(wire, str):
        return wire
    return json.dumps(wire, separators=(",", ":"))
