"""Cell text of typed cells, and which reader an upload gets (content, type, name)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from dsmsyncd.server.storage.ingest.cells import cell_text
from dsmsyncd.server.storage.ingest.formats import UploadFormat, detect_format
from tests.server.support import format_files


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (np.bool_(False), "false"),
        (7, "7"),
        (7.0, "7"),
        (np.float64(2.5), "2.5"),
        (0.1, "0.1"),
        (float("nan"), ""),
        (2.0**60, "1.152921504606847e+18"),
        (dt.date(2024, 1, 31), "2024-01-31"),
        (dt.datetime(2024, 1, 31, 8, 30), "2024-01-31T08:30:00"),
        (dt.datetime(2024, 1, 31, 8, 30, 0, 250000), "2024-01-31T08:30:00.250"),
        (dt.time(8, 30), "08:30:00"),
        ("  as is ", "  as is "),
    ],
)
def test_cell_text_reads_as_a_csv_export(value: object, text: str) -> None:
    assert cell_text(value) == text


@pytest.mark.parametrize(
    ("data", "content_type", "filename", "expected"),
    [
        (b"a,b\n", "text/csv", "a.csv", UploadFormat.DELIMITED),
        (b"a\tb\n", "text/tab-separated-values", "a.tsv", UploadFormat.DELIMITED),
        (format_files.xlsx_bytes({"S": [["a"]]}), "text/csv", "a.csv", UploadFormat.XLSX),
        (format_files.xls_bytes({"S": [["a"]]}), None, None, UploadFormat.XLS),
        (b'{"type": "FeatureCollection"}', None, "a.bin", UploadFormat.GEOJSON),
        (b'{"type": "FeatureCollection"}', "application/vnd.geo+json", None, UploadFormat.GEOJSON),
        (b"<?xml version='1.0'?><kml>", None, None, UploadFormat.KML),
        (format_files.kmz_bytes(["POINT (1 2)"], {"n": ["a"]}), None, None, UploadFormat.KMZ),
        (
            format_files.shapefile_zip_bytes(["POINT (1 2)"], {"n": ["a"]}),
            "application/zip",
            "s.zip",
            UploadFormat.SHAPEFILE,
        ),
        (b"not a workbook", None, "broken.xlsx", UploadFormat.XLSX),
    ],
)
def test_detect_format(
    tmp_path: Path,
    data: bytes,
    content_type: str | None,
    filename: str | None,
    expected: UploadFormat,
) -> None:
    path = tmp_path / "source.bin"
    path.write_bytes(data)
    assert detect_format(path, content_type=content_type, filename=filename) is expected
