"""Which reader an upload needs, and the input tables it becomes.

The format is told by the bytes when they are unambiguous (a zip archive, an OLE2
compound file as XLS uses), else by the content type the client declared (the SDK
sends one per method, digest §3a), else by the file name's extension, else by a glance
at the text. A file whose bytes contradict what it claims to be is read as what it is;
one that cannot be read as that fails the source with ``UnparsableFile``.

Every format ends in the same place: a delimited text file loaded by
``ingest.ingest_file``, which accounts for every record. Spreadsheets and geodata are
first written as a clean UTF-8 CSV (``spreadsheet.py``, ``geodata.py``); a geo file
gives one input table per layer. Those two readers are imported when a file needs
them: GDAL, numpy and calamine cost a server that only sees CSV about 70 MB of memory.
"""

from __future__ import annotations

import zipfile
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from dsmsyncd.server.storage.ingest import ParsedInput, errors_table, ingest_file, scratch_file
from dsmsyncd.server.storage.parse_options import ParseOptions

if TYPE_CHECKING:
    from dsmsyncd.server.storage.ingest.geodata import GeoLayer
from dsmsyncd.server.storage.sql import drop_relation_sql
from dsmsyncd.server.storage.sql import table as qtable

__all__ = ["UploadFormat", "detect_format", "ingest_upload"]


class UploadFormat(StrEnum):
    DELIMITED = "delimited"
    XLS = "xls"
    XLSX = "xlsx"
    GEOJSON = "geojson"
    KML = "kml"
    KMZ = "kmz"
    SHAPEFILE = "shapefile"


_CONTENT_TYPES = {
    "application/vnd.ms-excel": UploadFormat.XLS,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": UploadFormat.XLSX,
    "application/vnd.geo+json": UploadFormat.GEOJSON,
    "application/geo+json": UploadFormat.GEOJSON,
    "application/vnd.google-earth.kml+xml": UploadFormat.KML,
    "application/vnd.google-earth.kmz": UploadFormat.KMZ,
    "application/zip": UploadFormat.SHAPEFILE,
    "application/x-zip-compressed": UploadFormat.SHAPEFILE,
}
_EXTENSIONS = {
    ".xls": UploadFormat.XLS,
    ".xlsx": UploadFormat.XLSX,
    ".xlsm": UploadFormat.XLSX,
    ".geojson": UploadFormat.GEOJSON,
    ".json": UploadFormat.GEOJSON,
    ".kml": UploadFormat.KML,
    ".kmz": UploadFormat.KMZ,
    ".zip": UploadFormat.SHAPEFILE,
}
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"


def detect_format(path: Path, *, content_type: str | None, filename: str | None) -> UploadFormat:
    """The reader for the file at ``path`` (see the module docstring for the order)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    declared = _declared(content_type, filename)
    if head.startswith(_ZIP_MAGIC):
        return _zip_format(path, declared)
    if head.startswith(_OLE2_MAGIC):
        return UploadFormat.XLS
    if declared in (UploadFormat.GEOJSON, UploadFormat.KML):
        return declared
    if declared is not None and declared is not UploadFormat.DELIMITED:
        return declared  # a spreadsheet or archive without its magic: its reader says why
    if declared is None:
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if text.startswith(b"{"):
            return UploadFormat.GEOJSON
        if text.startswith(b"<") and b"<kml" in head:
            return UploadFormat.KML
    return UploadFormat.DELIMITED


def _declared(content_type: str | None, filename: str | None) -> UploadFormat | None:
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype in _CONTENT_TYPES:
        return _CONTENT_TYPES[ctype]
    if ctype.startswith("text/"):
        return UploadFormat.DELIMITED
    suffix = Path((filename or "").lower()).suffix
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    if suffix in (".csv", ".tsv", ".tab", ".txt"):
        return UploadFormat.DELIMITED
    return None


def _zip_format(path: Path, declared: UploadFormat | None) -> UploadFormat:
    """A zip archive is an XLSX workbook, a KMZ or a shapefile archive, by what it holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.lower() for n in archive.namelist()]
    except zipfile.BadZipFile:
        broken = declared in (UploadFormat.XLSX, UploadFormat.KMZ)
        return declared if broken and declared is not None else UploadFormat.SHAPEFILE
    if "xl/workbook.xml" in names or "[content_types].xml" in names:
        return UploadFormat.XLSX
    if any(n.endswith(".kml") for n in names) and not any(n.endswith(".shp") for n in names):
        return UploadFormat.KMZ
    return UploadFormat.SHAPEFILE  # its reader says so if there is no .shp in it


def ingest_upload(
    cur: duckdb.DuckDBPyConnection,
    source_path: Path,
    table: str,
    options: ParseOptions,
    *,
    content_type: str | None,
    filename: str | None,
    guess_types: bool = True,
) -> list[ParsedInput]:
    """Parse an upload of any format into input tables (blocking): ``table`` for the
    first (or only) one, ``{table}_{n}`` for a geo file's further layers.

    ``table`` and its row errors are replaced (a parse resumed after a restart starts
    clean), on this cursor: the parse job's own drop was a second cursor per file
    (issue 9). ``ingest_file`` replaces them; a spreadsheet or geo file's are dropped
    before its reader runs, too, so that a reader that fails leaves nothing stale.
    """
    kind = detect_format(source_path, content_type=content_type, filename=filename)
    if kind is not UploadFormat.DELIMITED:
        drop_relation_sql(cur, table)
        drop_relation_sql(cur, errors_table(table))
    if kind is UploadFormat.DELIMITED:
        parsed = ingest_file(
            cur,
            source_path,
            table,
            options,
            content_type=content_type,
            filename=filename,
            guess_types=guess_types,
        )
        return [parsed]
    if kind in (UploadFormat.XLS, UploadFormat.XLSX):
        return [_ingest_sheet(cur, source_path, table, options, kind, guess_types)]
    from dsmsyncd.server.storage.ingest.geodata import geo_layers  # see the docstring

    layers = geo_layers(source_path, kind.value, filename)
    return [
        _ingest_layer(
            cur, source_path, table if i == 0 else f"{table}_{i + 1}", layer, options, guess_types
        )
        for i, layer in enumerate(layers)
    ]


def _as_clean_csv(options: ParseOptions) -> ParseOptions:
    """``options`` for reading the clean CSV a workbook or layer was written as."""
    return replace(options, column_separator=",", quote_char='"', encoding="utf-8")


def _ingest_sheet(
    cur: duckdb.DuckDBPyConnection,
    source_path: Path,
    table: str,
    options: ParseOptions,
    kind: UploadFormat,
    guess_types: bool,
) -> ParsedInput:
    from dsmsyncd.server.storage.ingest.spreadsheet import write_sheet_csv  # see the docstring

    with scratch_file(source_path, "sheet") as sheet_csv:
        name = write_sheet_csv(
            source_path, sheet_csv, label=kind.value.upper(), sheet_name=options.sheet_name
        )
        parsed = ingest_file(
            cur,
            sheet_csv,
            table,
            _as_clean_csv(options),
            content_type="text/csv",
            filename=None,
            guess_types=guess_types,
        )
    return replace(parsed, name=name)


def _ingest_layer(
    cur: duckdb.DuckDBPyConnection,
    source_path: Path,
    table: str,
    layer: GeoLayer,
    options: ParseOptions,
    guess_types: bool,
) -> ParsedInput:
    """One layer: its CSV loaded, then the geometry column typed (NULL where none)."""
    from dsmsyncd.server.storage.ingest.geodata import write_layer_csv

    layer_options = replace(_as_clean_csv(options), header_count=1, column_header=1)
    with scratch_file(source_path, "layer") as layer_csv:
        write_layer_csv(layer, layer_csv)
        parsed = ingest_file(
            cur,
            layer_csv,
            table,
            layer_options,
            content_type="text/csv",
            filename=None,
            guess_types=guess_types,
        )
    geometry = parsed.columns[0]
    cur.execute(
        f"UPDATE {qtable(table)} SET {geometry.sql_name} = NULL WHERE {geometry.sql_name} = ''"
    )
    typed = replace(geometry, guessed_type=layer.geometry_type, soql_type=layer.geometry_type)
    return replace(parsed, name=layer.name, columns=[typed, *parsed.columns[1:]])
