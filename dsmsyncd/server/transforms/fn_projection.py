"""Projections: set_projection, reproject and reproject_to_wgs84 (pyproj, offline).

A geometry without projection information is WGS84, as hosted. ``set_projection``
records another one in the GeoJSON's ``crs`` member (``{"type": "name",
"properties": {"name": <the text given>}}``, the 2008 GeoJSON way); ``reproject``
moves the coordinates from that projection (or WGS84) to the target and records the
target, and a WGS84 result carries no ``crs``. A projection is a proj4 string or an
authority code (``EPSG:2926``), given as a literal and checked when the transform
compiles; PROJ's database ships inside the pyproj wheel, so nothing is downloaded.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pyproj

from dsmsyncd.server.soql_types import GEOMETRY_TYPES, SoqlType
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import sql_text
from dsmsyncd.server.transforms.typecheck import Call
from dsmsyncd.server.transforms.udf import CellError, udf, udf_call

T = SoqlType.TEXT
WGS84 = "EPSG:4326"
_R = TypeVar("_R")


# PROJ crashed the process (a segfault) when its objects were made or used on the
# threads DuckDB runs UDFs on, so all PROJ work runs on one thread of its own, which
# keeps the projections and transformers it made (a handful: they are literals).
_proj_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proj")
_per_thread = threading.local()


def _on_proj_thread(work: Callable[..., _R], *args: Any) -> _R:
    return _proj_thread.submit(work, *args).result()


def _crs(text: str) -> pyproj.CRS:
    cache: dict[str, pyproj.CRS] = _per_thread.__dict__.setdefault("crs", {})
    if text not in cache:
        cache[text] = pyproj.CRS.from_user_input(text)
    return cache[text]


def _transformer(source: str, target: str) -> pyproj.Transformer:
    cache: dict[tuple[str, str], pyproj.Transformer] = _per_thread.__dict__.setdefault(
        "transformers", {}
    )
    if (source, target) not in cache:
        cache[source, target] = pyproj.Transformer.from_crs(
            _crs(source), _crs(target), always_xy=True
        )
    return cache[source, target]


def _is_wgs84(text: str) -> bool:
    return bool(_crs(text).equals(_crs(WGS84), ignore_axis_order=True))


def _with_projection(geometry: dict[str, Any], projection: str) -> str:
    geometry.pop("crs", None)
    if not _is_wgs84(projection):
        geometry["crs"] = {"type": "name", "properties": {"name": projection}}
    return json.dumps(geometry, separators=(",", ":"))


def _projection_of(geometry: dict[str, Any]) -> str:
    name = geometry.get("crs", {}).get("properties", {}).get("name")
    return name if isinstance(name, str) else WGS84


def _positions(coords: Any) -> list[list[float]]:
    """Every ``[x, y]`` of a GeoJSON coordinates tree, in order (the same lists)."""
    if coords and isinstance(coords[0], int | float):
        return [coords]
    return [p for c in coords for p in _positions(c)]


def _move(coords: Any, transformer: pyproj.Transformer) -> None:
    """Reproject every position in place, in one PROJ call for the whole geometry."""
    positions = _positions(coords)
    xs, ys = transformer.transform([p[0] for p in positions], [p[1] for p in positions])
    for position, x, y in zip(positions, xs, ys, strict=True):
        if not (math.isfinite(x) and math.isfinite(y)):
            raise CellError(
                "reprojection_failed",
                f"The coordinate {position[:2]} is outside the projection's domain",
            )
        position[:2] = [x, y]


@udf("set_projection", "VARCHAR", "VARCHAR", failure="reprojection_failed")
def _set_projection_udf(geometry: str, projection: str) -> str:
    return _on_proj_thread(_with_projection, json.loads(geometry), projection)


@udf("reproject", "VARCHAR", "VARCHAR", failure="reprojection_failed")
def _reproject_udf(geometry: str, target: str) -> str:
    return _on_proj_thread(_reproject, geometry, target)


def _reproject(geometry: str, target: str) -> str:
    value = json.loads(geometry)
    source = _projection_of(value)
    _move(value["coordinates"], _transformer(source, target))
    return _with_projection(value, target)


# Projection texts PROJ has accepted: compiling a transform checks its literal, and a
# hop to the PROJ thread per compile is not free (a handful of texts in practice).
_known_projections: set[str] = set()


def _projection_literal(c: Call, arg: int) -> str:
    text = c.literal_text(arg, "projection")
    if text in _known_projections:
        return text
    try:
        _on_proj_thread(_crs, text)
    except pyproj.exceptions.CRSError as error:
        raise c.fail(f"{c.name}: unknown projection {text!r}: {error}", arg, "syntax") from None
    if len(_known_projections) < 1024:
        _known_projections.add(text)
    return text


def _register(kind: SoqlType) -> None:
    @define("set_projection", (kind, T), kind, note="kept in the GeoJSON's crs member")
    def set_projection(c: Call) -> tuple[str, str]:
        projection = sql_text(_projection_literal(c, 1))
        return udf_call("set_projection", [c.args[0].value, projection], kind)

    @define("reproject", (kind, T), kind)
    def reproject(c: Call) -> tuple[str, str]:
        target = sql_text(_projection_literal(c, 1))
        return udf_call("reproject", [c.args[0].value, target], kind)

    @define("reproject_to_wgs84", (kind,), kind)
    def reproject_to_wgs84(c: Call) -> tuple[str, str]:
        return udf_call("reproject", [c.args[0].value, sql_text(WGS84)], kind)


for _kind in sorted(GEOMETRY_TYPES):
    _register(_kind)
