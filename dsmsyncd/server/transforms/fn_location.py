"""The legacy ``location`` type: make_location, to_location and the location_* readers.

A location is stored, and served, as SODA shows one: ``{"latitude": "47.6",
"longitude": "-122.3", "human_address": "{\\"address\\": …, \\"city\\": …, \\"state\\": …,
\\"zip\\": …}"}`` (numbers as text, the address as a JSON string; missing parts are
left out). Building and reading it is plain SQL; only ``to_location(text)``, which
reads the legacy text form (``address\\ncity, state zip\\n(lat, lon)``, or one line
with commas), parses in Python.
"""

from __future__ import annotations

import json
import re

from dsmsyncd.server.soql_types import SoqlType, duckdb_type
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import NULL, text_of
from dsmsyncd.server.transforms.typecheck import Call
from dsmsyncd.server.transforms.udf import CellError, udf, udf_call

T, N, P, LOC = SoqlType.TEXT, SoqlType.NUMBER, SoqlType.POINT, SoqlType.LOCATION
ADDRESS_PARTS = ("address", "city", "state", "zip")


def _coordinate_text(point: str, index: int) -> str:
    number = f"TRY_CAST(json_extract_string({point}, '$.coordinates[{index}]') AS {duckdb_type(N)})"
    return text_of(number, N)


def _location_sql(parts: list[str], point: str | None) -> str:
    """SQL for a location from address-part SQL (text) and an optional point SQL."""
    human = "NULL"
    if parts:
        pairs = ", ".join(f"'{k}', {v}" for k, v in zip(ADDRESS_PARTS, parts, strict=True))
        none = " AND ".join(f"{v} IS NULL" for v in parts)
        human = f"(CASE WHEN NOT ({none}) THEN CAST(json_object({pairs}) AS VARCHAR) END)"
    lat = _coordinate_text(point, 1) if point else "NULL"
    lon = _coordinate_text(point, 0) if point else "NULL"
    body = f"json_object('latitude', {lat}, 'longitude', {lon}, 'human_address', {human})"
    value = f"CAST(json_merge_patch('{{}}', {body}) AS VARCHAR)"
    return f"(CASE WHEN {value} <> '{{}}' THEN {value} END)"


@define("make_location", (T, T, T, T, P), LOC, strict=False)
@define("make_location", (T, T, T, T), LOC, strict=False)
def _make_location(c: Call) -> tuple[str, str]:
    parts = [a.value for a in c.args[:4]]
    point = c.args[4].value if len(c.args) == 5 else None
    return _location_sql(parts, point), NULL


@define("make_location", (P,), LOC)
def _make_location_point(c: Call) -> tuple[str, str]:
    return _location_sql([], c.args[0].value), NULL


def _address_reader(part: str) -> None:
    def build(c: Call) -> tuple[str, str]:
        human = f"json_extract_string({c.args[0].value}, '$.human_address')"
        return f"json_extract_string({human}, '$.{part}')", NULL

    define(f"location_{part}", (LOC,), T)(build)
    define(f"op$.{part}", (LOC,), T)(build)


for _part in ADDRESS_PARTS:
    _address_reader(_part)


@define("location_point", (LOC,), P)
@define("location_to_point", (LOC,), P)
@define("op$.point", (LOC,), P)
def _location_point(c: Call) -> tuple[str, str]:
    x = c.args[0].value
    lat, lon = (f"json_extract_string({x}, '$.{k}')" for k in ("latitude", "longitude"))
    both = f"TRY_CAST({lat} AS DOUBLE) IS NOT NULL AND TRY_CAST({lon} AS DOUBLE) IS NOT NULL"
    point = f"""'{{"type":"Point","coordinates":[' || {lon} || ',' || {lat} || ']}}'"""
    return f"(CASE WHEN {both} THEN {point} END)", NULL


@define("to_location", (LOC,), LOC)
def _to_location_same(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define(
    "to_location",
    (T,),
    LOC,
    note="reads 'address, city, state zip (lat, lon)' text; no address parsing service",
)
def _to_location_text(c: Call) -> tuple[str, str]:
    return udf_call("to_location", [c.args[0].value], LOC)


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_POINT = re.compile(rf"\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*$")
_STATE_ZIP = re.compile(r"^(?:([A-Za-z]{2})\b)?\s*(\d{5}(?:-\d{4})?)?$")


@udf("to_location", "VARCHAR", failure="type_conversion_failed")
def _to_location_udf(text: str) -> str | None:
    if not text.strip():
        return None
    location = _from_json(text) if text.lstrip().startswith("{") else _from_text(text)
    if location is None:
        english = f'Unable to convert "{text}" from text to location'
        data = {"value": text, "source_type": "text", "target_type": "location"}
        raise CellError("type_conversion_failed", english, data)
    return json.dumps(location, separators=(",", ":"))


def _from_json(text: str) -> dict[str, str] | None:
    """A location's own JSON (as SODA writes it) read back."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value.keys() <= {
        "latitude",
        "longitude",
        "human_address",
    }:
        return None
    out: dict[str, str] = {}
    for key in ("latitude", "longitude"):
        if value.get(key) is not None:
            if not re.fullmatch(_NUMBER, str(value[key]).strip()):
                return None
            out[key] = str(value[key]).strip().lstrip("+")
    human = value.get("human_address")
    if isinstance(human, dict):
        human = json.dumps({k: human.get(k) for k in ADDRESS_PARTS}, separators=(",", ":"))
    if human is not None:
        out["human_address"] = str(human)
    return out or None


def _from_text(text: str) -> dict[str, str] | None:
    """``address\\ncity, state zip\\n(lat, lon)``, each part optional, or one line with commas."""
    out: dict[str, str] = {}
    match = _POINT.search(text)
    if match:
        out["latitude"], out["longitude"] = (g.lstrip("+") for g in match.groups())
        text = text[: match.start()]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    pieces = lines if len(lines) > 1 else [p.strip() for p in ",".join(lines).split(",")]
    parts: dict[str, str | None] = dict.fromkeys(ADDRESS_PARTS)
    if len(lines) > 1:
        parts["address"] = lines[0]
        pieces = [p.strip() for p in " ".join(lines[1:]).split(",")]
    elif len(pieces) < 3:
        parts["address"] = ", ".join(p for p in pieces if p) or None
        pieces = []
    else:
        parts["address"] = ", ".join(pieces[:-2])
        pieces = pieces[-2:]
    if pieces:
        parts["city"] = pieces[0] or None
        tail = ", ".join(pieces[1:]).strip()
        state_zip = _STATE_ZIP.match(tail)
        if state_zip is None:
            return None
        parts["state"], parts["zip"] = state_zip.groups()
    if any(parts.values()):
        out["human_address"] = json.dumps(parts, separators=(",", ":"))
    return out or None
