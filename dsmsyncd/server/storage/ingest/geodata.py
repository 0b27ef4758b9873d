"""GeoJSON, KML, KMZ and zipped shapefiles: each layer's features as rows of a CSV.

GDAL (through ``pyogrio``, whose wheels bundle it) reads every layer; ``shapely`` turns
the geometries into GeoJSON and ``pyproj`` reprojects a shapefile's coordinates to
WGS84 as the hosted importer does. Each layer becomes one clean UTF-8 CSV with a header
row: the geometry first, in a column named ``the_geom`` as the hosted importer names it,
then the feature properties as text (``cells.py``). ``ingest`` then loads that CSV like
any upload, so every feature is a row and the counts are checked the same way.

A dataset column holds one geometry type, so a layer's geometries are made uniform:
``Polygon`` and ``MultiPolygon`` in one layer both become ``multipolygon`` (likewise
points and lines); a layer mixing families (points and polygons) is split into one
layer per family. A ``GeometryCollection`` fits no column type and fails the file.
"""

from __future__ import annotations

import csv
import json
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyogrio.errors import CRSError, DataLayerError, DataSourceError, FieldError, GeometryError

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.ingest.cells import cell_text
from dsmsyncd.server.storage.ingest.load import UnparsableFile

__all__ = ["GEOMETRY_COLUMN", "GeoLayer", "geo_layers", "write_layer_csv"]

GEOMETRY_COLUMN = "the_geom"
# Fields LIBKML adds to every KML layer for styling and time; not the placemarks' data.
_KML_HOUSEKEEPING = frozenset(
    {"timestamp", "begin", "end", "altitudeMode", "tessellate", "extrude", "visibility"}
    | {"drawOrder", "icon", "snippet"}
)
_GDAL_ERRORS = (DataSourceError, DataLayerError, FieldError, GeometryError, CRSError)
_WGS84 = ("EPSG:4326", "OGC:CRS84")
# shapely type ids → (family, is multi)
_FAMILY = {0: ("point", False), 4: ("point", True), 1: ("line", False), 2: ("line", False)}
_FAMILY |= {5: ("line", True), 3: ("polygon", False), 6: ("polygon", True)}
_TYPES = {
    ("point", False): SoqlType.POINT,
    ("point", True): SoqlType.MULTIPOINT,
    ("line", False): SoqlType.LINE,
    ("line", True): SoqlType.MULTILINE,
    ("polygon", False): SoqlType.POLYGON,
    ("polygon", True): SoqlType.MULTIPOLYGON,
}
# Each takes a list of its single parts (typed loosely: the stubs type each differently).
_MULTI: dict[str, Any] = {"point": shapely.MultiPoint, "line": shapely.MultiLineString}
_MULTI |= {"polygon": shapely.MultiPolygon}
_FORMAT_NAMES = {"geojson": "GeoJSON", "kml": "KML", "kmz": "KMZ", "shapefile": "shapefile"}


@dataclass
class GeoLayer:
    """One layer's features, read and made uniform, ready to be written as CSV."""

    name: str
    geometry_type: SoqlType
    fields: list[str]
    columns: list[list[Any]]  # one list of values per field
    geojson: list[str | None]  # one GeoJSON geometry per feature, None when it has none


def geo_layers(path: Path, kind: str, filename: str | None = None) -> list[GeoLayer]:
    """Every non-empty layer of a geo file (``kind``: geojson, kml, kmz or shapefile).

    GDAL names a layer without a name of its own after the file it read, which on disk
    is the server's ``source.bin``: such a layer takes the uploaded file's name instead.
    """
    label = _FORMAT_NAMES[kind]
    layers: list[GeoLayer] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's notes on odd input are not failures
        try:
            for dataset, layer in _datasets(path, kind):
                shown = Path(filename).stem if filename and layer == path.stem else layer
                layers.extend(_read_layer(dataset, layer, kind, shown))
        except _GDAL_ERRORS as exc:
            why = (geojson_problem(path) if kind == "geojson" else None) or _gdal_text(exc, path)
            raise UnparsableFile(f"The file is not a valid {label} file: {why}.") from exc
    if not layers:
        raise UnparsableFile(
            f"The {label} file has no features: upload a file with at least one feature."
        )
    return layers


def write_layer_csv(layer: GeoLayer, target: Path) -> None:
    """The layer as a CSV: a header row, then one row per feature, geometry first."""
    with target.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow([GEOMETRY_COLUMN, *layer.fields])
        for i, geometry in enumerate(layer.geojson):
            out.writerow([geometry or "", *(cell_text(col[i]) for col in layer.columns)])


def _datasets(path: Path, kind: str) -> Iterator[tuple[str, str]]:
    """(GDAL dataset path, layer name) for every layer the file holds."""
    if kind in ("geojson", "kml"):
        sources = [str(path)]
    else:
        # Braces let GDAL open a zip whose name does not end in .zip (``source.bin``).
        sources = [f"/vsizip/{{{path}}}/{member}" for member in _members(path, kind)]
    for source in sources:
        for name, _geometry in pyogrio.list_layers(source):
            yield source, str(name)


def _members(path: Path, kind: str) -> list[str]:
    """The files inside a KMZ (its KML) or a shapefile archive (its .shp files)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.startswith("__MACOSX/")]
    except zipfile.BadZipFile as exc:
        raise UnparsableFile(f"The file is not a valid zip archive: {exc}") from exc
    wanted = ".kml" if kind == "kmz" else ".shp"
    found = [n for n in names if n.lower().endswith(wanted)]
    if kind == "kmz" and found:
        doc = [n for n in found if n.lower().endswith("doc.kml")]
        return doc[:1] or found[:1]
    if not found:
        what = "a KML file" if kind == "kmz" else "a .shp file (with its .shx and .dbf)"
        listing = ", ".join(names[:10]) or "nothing"
        raise UnparsableFile(
            f"The zip archive has no {wanted} file: it holds {listing}. Upload a zip "
            f"that contains {what}."
        )
    return found


def _read_layer(dataset: str, layer: str, kind: str, shown: str) -> list[GeoLayer]:
    meta, _fids, wkb, field_data = pyogrio.raw.read(dataset, layer=layer)
    fields = [str(f) for f in meta["fields"]]
    columns = [_python_values(values) for values in field_data]
    if kind in ("kml", "kmz"):
        keep = [i for i, f in enumerate(fields) if f not in _KML_HOUSEKEEPING]
        fields, columns = [fields[i] for i in keep], [columns[i] for i in keep]
    if len(wkb) == 0:
        return []
    geoms = shapely.force_2d(_to_wgs84(shapely.from_wkb(wkb), meta.get("crs")))
    type_ids = shapely.get_type_id(geoms)
    if (type_ids == 7).any():
        row = int(np.argmax(type_ids == 7)) + 1
        raise UnparsableFile(
            f"Feature {row} of layer {shown!r} is a GeometryCollection, which no dataset "
            "column can hold: split it into features of one geometry type each."
        )
    # In the order the file first has them; a layer without any geometry is "point".
    families = list(dict.fromkeys(_FAMILY[int(t)][0] for t in type_ids if t >= 0)) or ["point"]
    layers = []
    for family in families:
        rows = [i for i, t in enumerate(type_ids) if t < 0 or _FAMILY[int(t)][0] == family]
        if len(families) > 1:  # features without geometry go with the first family
            rows = [i for i in rows if type_ids[i] >= 0 or family == families[0]]
        picked, geometry_type = _uniform([geoms[i] for i in rows], family)
        name = shown if len(families) == 1 else f"{shown} ({family})"
        layers.append(
            GeoLayer(
                name=name,
                geometry_type=geometry_type,
                fields=fields,
                columns=[[col[i] for i in rows] for col in columns],
                geojson=[None if g is None else shapely.to_geojson(g) for g in picked],
            )
        )
    return layers


def _uniform(geoms: list[Any], family: str) -> tuple[list[Any], SoqlType]:
    """One family's geometries as one type: all single, or all multi when any is multi."""
    multi = any(g is not None and _FAMILY[shapely.get_type_id(g)][1] for g in geoms)
    if multi:
        geoms = [
            g if g is None or _FAMILY[shapely.get_type_id(g)][1] else _MULTI[family]([g])
            for g in geoms
        ]
    return geoms, _TYPES[(family, multi)]


def _to_wgs84(geoms: Any, crs: str | None) -> Any:
    """Coordinates in WGS84 longitude/latitude (a shapefile's .prj may say otherwise)."""
    if not crs or crs.upper() in _WGS84:
        return geoms
    from pyproj import CRS, Transformer  # only shapefiles in other systems need it

    source = CRS.from_user_input(crs)
    if source.equals(CRS.from_epsg(4326), ignore_axis_order=True):
        return geoms
    transformer = Transformer.from_crs(source, "EPSG:4326", always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(*xy.T)))


def _python_values(values: Any) -> list[Any]:
    """A GDAL field's values as Python objects (datetimes as ``datetime``, NaT as None)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return list(values.astype("datetime64[ms]").tolist())
    return list(values.tolist()) if isinstance(values, np.ndarray) else list(values)


def _gdal_text(exc: Exception, path: Path) -> str:
    """GDAL's message without the file path it names (a server path means nothing)."""
    text = str(exc).replace("\n", " ").strip().rstrip(".")
    for shown in (f"/vsizip/{{{path}}}/", f"/vsizip/{path}/", f"{path}/", str(path)):
        text = text.replace(shown, "")
    if "not recognized as being in a supported file format" in text:
        return "its content is not recognised (it may be truncated or of another format)"
    return text.split("; It might help", 1)[0]


def geojson_problem(path: Path, limit: int = 16 * 1024 * 1024) -> str | None:
    """Why a small file is not GeoJSON, in JSON's own words, if it can say (else None)."""
    if path.stat().st_size > limit:
        return None
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        return f"it is not valid JSON: {exc}"
    kind = document.get("type") if isinstance(document, dict) else None
    if kind not in ("FeatureCollection", "Feature"):
        return f'its top-level "type" is {json.dumps(kind)}, not "FeatureCollection" or "Feature"'
    return None
