"""Geometry algorithms on GeoJSON values, as the hosted transform functions define them.

The hosted service is written in Rust on the ``geo`` crate; its documentation gives
results these functions reproduce: simplification *to a number of vertices* (the most
significant ones by Ramer-Douglas-Peucker, or the least by Visvalingam-Whyatt area),
the structural checks of ``validate_geometry`` and the fixes of ``repair_geometry``,
haversine lengths on the mean Earth radius, Google polyline decoding. Shapely does
the planar work (centroid, point in polygon, pole of inaccessibility).
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from typing import Any

import shapely
from shapely.geometry import Polygon
from shapely.ops import polylabel as _polylabel

EARTH_RADIUS_M = 6371008.8  # the mean radius geo's haversine uses
MAX_VERTICES = 500_000
POLYLABEL_TOLERANCE = 0.001  # reproduces the documented example ([0.5859375, 0.5859375])

Coord = list[float]


def dumps(geometry: dict[str, Any]) -> str:
    return json.dumps(geometry, separators=(",", ":"))


def point(x: float, y: float) -> str:
    return dumps({"type": "Point", "coordinates": [x, y]})


def centroid(geojson: str) -> str:
    shape = shapely.from_geojson(geojson)
    if shape.is_empty:
        raise ValueError("the geometry is empty")
    c = shape.centroid
    return point(c.x, c.y)


def pole_of_inaccessibility(geojson: str) -> str:
    shape = shapely.from_geojson(geojson)
    if not isinstance(shape, Polygon):
        raise ValueError(f"polylabel takes a polygon, not a {shape.geom_type}")
    label = _polylabel(shape, tolerance=POLYLABEL_TOLERANCE)
    return point(label.x, label.y)


def is_within(point_geojson: str, area_geojson: str) -> bool:
    return bool(shapely.from_geojson(point_geojson).within(shapely.from_geojson(area_geojson)))


def _haversine(a: Coord, b: Coord) -> float:
    """Great-circle meters, with the operations in geo's order (same last digit)."""
    lat1, lat2 = math.radians(a[1]), math.radians(b[1])
    half_dlat = math.radians(b[1] - a[1]) / 2
    half_dlon = math.radians(b[0] - a[0]) / 2
    h = math.sin(half_dlat) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(half_dlon) ** 2
    return EARTH_RADIUS_M * (2 * math.asin(math.sqrt(h)))


def haversine_length(geojson: str) -> float:
    """Meters along a line, or along every line of a multiline."""
    geometry = json.loads(geojson)
    lines = [geometry["coordinates"]]
    if geometry["type"] == "MultiLineString":
        lines = geometry["coordinates"]
    # Line by line, then the lines: geo's summation order.
    total = 0.0
    for line in lines:
        length = 0.0
        for a, b in itertools.pairwise(line):
            length += _haversine(a, b)
        total += length
    return total


def _segment_distance(p: Coord, a: Coord, b: Coord) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    if dx == 0 and dy == 0:
        return math.hypot(p[0] - a[0], p[1] - a[1])
    return abs(dx * (a[1] - p[1]) - dy * (a[0] - p[0])) / math.hypot(dx, dy)


def rdp_to_count(coords: list[Coord], keep: int) -> list[Coord]:
    """The `keep` most significant vertices: RDP splits, farthest point first."""
    if len(coords) <= keep:
        return coords
    kept = {0, len(coords) - 1}
    heap: list[tuple[float, int, int, int]] = []

    def split(lo: int, hi: int) -> None:
        if hi - lo < 2:
            return
        far = max(
            range(lo + 1, hi), key=lambda i: _segment_distance(coords[i], coords[lo], coords[hi])
        )
        distance = _segment_distance(coords[far], coords[lo], coords[hi])
        heapq.heappush(heap, (-distance, far, lo, hi))

    split(0, len(coords) - 1)
    while heap and len(kept) < keep:
        _, far, lo, hi = heapq.heappop(heap)
        kept.add(far)
        split(lo, far)
        split(far, hi)
    return [coords[i] for i in sorted(kept)]


def _area(a: Coord, b: Coord, c: Coord) -> float:
    return abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])) / 2


def vw_to_count(coords: list[Coord], keep: int) -> list[Coord]:
    """Drop the vertex of the smallest triangle until `keep` are left (Visvalingam-Whyatt)."""
    if len(coords) <= keep:
        return coords
    prev = list(range(-1, len(coords) - 1))
    nxt = list(range(1, len(coords) + 1))
    alive = [True] * len(coords)
    heap = [(_area(coords[i - 1], coords[i], coords[i + 1]), i) for i in range(1, len(coords) - 1)]
    heapq.heapify(heap)
    current = {i: area for area, i in heap}
    remaining = len(coords)
    while heap and remaining > keep:
        area, i = heapq.heappop(heap)
        if not alive[i] or current.get(i) != area:
            continue
        alive[i] = False
        remaining -= 1
        before, after = prev[i], nxt[i]
        nxt[before], prev[after] = after, before
        for j in (before, after):
            if 0 < j < len(coords) - 1:
                current[j] = _area(coords[prev[j]], coords[j], coords[nxt[j]])
                heapq.heappush(heap, (current[j], j))
    return [c for c, live in zip(coords, alive, strict=True) if live]


def simplify(geojson: str, vertices: float, *, preserve_topology: bool) -> str:
    """Each line or ring of the geometry down to `vertices` vertices (rings keep 4, lines 2)."""
    if vertices != int(vertices) or not 0 <= vertices <= MAX_VERTICES:
        raise ValueError(f"the vertex count must be a whole number from 0 to {MAX_VERTICES}")
    reduce = vw_to_count if preserve_topology else rdp_to_count
    geometry = json.loads(geojson)

    def walk(value: Any, depth: int, ring: bool) -> Any:
        if depth == 0:
            return reduce(value, max(int(vertices), 4 if ring else 2))
        return [walk(v, depth - 1, ring) for v in value]

    depth, ring = _LINE_DEPTH[geometry["type"]]
    geometry["coordinates"] = walk(geometry["coordinates"], depth, ring)
    return dumps(geometry)


# GeoJSON type → (list levels above one line or ring, whether those are polygon rings).
_LINE_DEPTH = {
    "LineString": (0, False),
    "MultiLineString": (1, False),
    "Polygon": (1, True),
    "MultiPolygon": (2, True),
}

_RING_REASON = "Polygon {} is not closed or does not have >= 4 coordinates."
_LINE_REASON = "LineString does not have >= 2 coordinates."


def _ring_ok(ring: list[Coord]) -> bool:
    return len(ring) >= 4 and ring[0] == ring[-1]


def invalid_reason(geometry: dict[str, Any]) -> str | None:
    """Why a geometry breaks the hosted invariants (closed rings of 4+, lines of 2+)."""
    kind, coords = geometry["type"], geometry["coordinates"]
    polygons = [coords] if kind == "Polygon" else coords if kind == "MultiPolygon" else []
    for rings in polygons:
        for index, ring in enumerate(rings):
            if not _ring_ok(ring):
                return _RING_REASON.format("Exterior" if index == 0 else "Interior")
    lines = [coords] if kind == "LineString" else coords if kind == "MultiLineString" else []
    if any(len(line) < 2 for line in lines):
        return _LINE_REASON
    return None


def repair(geometry: dict[str, Any]) -> dict[str, Any]:
    """Close every ring and pad it to 4 coordinates; pad lines to 2 (the documented fixes)."""
    kind, coords = geometry["type"], geometry["coordinates"]

    def ring(r: list[Coord]) -> list[Coord]:
        if not r:
            return r
        closed = r if r[0] == r[-1] and len(r) > 1 else [*r, r[0]]
        return closed + [r[0]] * (4 - len(closed))

    def line(points: list[Coord]) -> list[Coord]:
        return points + points[:1] * (2 - len(points)) if points else points

    if kind == "Polygon":
        coords = [ring(r) for r in coords]
    elif kind == "MultiPolygon":
        coords = [[ring(r) for r in p] for p in coords]
    elif kind == "LineString":
        coords = line(coords)
    elif kind == "MultiLineString":
        coords = [line(x) for x in coords]
    return {**geometry, "coordinates": coords}


def decode_polyline(encoded: str, precision: int) -> list[Coord]:
    """Google's encoded polyline as ``[lon, lat]`` pairs; ValueError when malformed."""
    values: list[int] = []
    shift = result = 0
    for char in encoded:
        byte = ord(char) - 63
        if not 0 <= byte < 64:
            raise ValueError(f"{char!r} cannot appear in an encoded polyline")
        result |= (byte & 0x1F) << shift
        shift += 5
        if byte < 0x20:
            values.append(~(result >> 1) if result & 1 else result >> 1)
            shift = result = 0
    if shift or len(values) % 2:
        raise ValueError("the encoded polyline ends in the middle of a coordinate")
    factor = 10**precision
    lat = lon = 0
    coords: list[Coord] = []
    for i in range(0, len(values), 2):
        lat, lon = lat + values[i], lon + values[i + 1]
        coords.append([lon / factor, lat / factor])
    return coords
