"""The cheap checks ingest runs on DuckDB's row count, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsmsyncd.server.storage.ingest.checks import (
    INLINE_BYTES,
    LinesAlongside,
    LineShapes,
    line_shapes,
    physical_lines,
    quoted_records,
)


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"a,b\n1,2\n", 2),
        (b"a,b\n1,2", 2),  # no newline at the end
        (b"a,b\r\n1,2\r\n\r\n\r\n", 2),  # blank lines at the end do not count
        (b"a,b\n\n1,2\n", 3),  # a blank line inside does
        (b"", 0),
    ],
)
def test_physical_lines(tmp_path: Path, data: bytes, lines: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert physical_lines(path, "utf-8", "utf-8-sig") == lines


def test_physical_lines_utf16(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes("a,b\n1,\u0a0a\n2,x".encode("utf-16"))
    assert physical_lines(path, "utf-16", "utf-16") == 3


@pytest.mark.parametrize("more_lines", [0, INLINE_BYTES // 8], ids=["inline", "alongside"])
def test_lines_counted_alongside_answer_for_their_reading_only(
    tmp_path: Path, more_lines: int
) -> None:
    """The count made in the background (or, for a small file, when asked for) is the
    count of the reading it was started for; another reading of the file (another
    encoding) is counted anew."""
    path = tmp_path / "f.csv"
    path.write_bytes(("a,b\n1,\u0a0a\n" + "2,x\n" * more_lines + "2,x").encode("utf-16"))
    assert (path.stat().st_size > INLINE_BYTES) == (more_lines > 0)
    with LinesAlongside(path, "utf-16", "utf-16") as lines:
        assert lines.lines(path, "utf-16", "utf-16") == 3 + more_lines
        # As bytes, U+0A0A's UTF-16 encoding holds two newline bytes: a different count.
        assert lines.lines(path, "latin-1", "latin-1") == physical_lines(path, "latin-1", "latin-1")
        assert lines.lines(path, "latin-1", "latin-1") != 3 + more_lines


@pytest.mark.parametrize(
    ("data", "records"),
    [
        (b'h\n1,"two\nlines"\n2,x\n', 2),
        (b'h\n1,"a ""quoted""\r\nword"\r\n\r\n2,x\r\n', 2),  # doubled quotes; a blank line
        (b'h\n1,"x\n\ny"\n', 1),  # a blank line inside a quoted cell is part of it
        (b"h\n1,5'11\"\n2,x\n3,y\n", 1),  # a stray quote: the count differs from the rows
    ],
)
def test_quoted_records(tmp_path: Path, data: bytes, records: int) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert quoted_records(path, "utf-8", "utf-8-sig", '"', 1) == records


def test_quoted_records_skips_header_lines_and_reads_utf16(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes('"a\nb",c\n1,"x\ny"\n'.encode("utf-16"))
    assert quoted_records(path, "utf-16", "utf-16", '"', 2) == 1


def test_quoted_records_quote_outside_the_encoding_matches_nothing(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"h\n1\n")
    assert quoted_records(path, "latin-1", "latin-1", "\u201c", 1) == -1


@pytest.mark.parametrize(
    ("data", "shapes"),
    [
        (b"id,name\n1,a\n2,b\n", LineShapes(lone_cr=False, maybe_empty=False)),
        (b"id,name\r\n1,a\r\n2,b\r\n\r\n", LineShapes(lone_cr=False, maybe_empty=False)),
        (b"id,name\n1,a\n,\n", LineShapes(lone_cr=False, maybe_empty=True)),
        (b'id,name\n1,a\n "" ,\t" "\n2,b', LineShapes(lone_cr=False, maybe_empty=True)),
        (b"id,name\n1,a\r2,b\n", LineShapes(lone_cr=True, maybe_empty=False)),
        (b",\n1,a\n", LineShapes(lone_cr=False, maybe_empty=False)),  # the header's
    ],
)
def test_line_shapes_tell_lone_carriage_returns_and_lines_of_empty_cells(
    tmp_path: Path, data: bytes, shapes: LineShapes
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    assert line_shapes(path, "utf-8", ",", '"', header_lines=1) == shapes


def test_line_shapes_only_for_small_files_in_ascii_encodings(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"id\n" + b"1\n" * INLINE_BYTES)
    assert line_shapes(path, "utf-8", ",", '"', header_lines=1) is None
    path.write_bytes("id\n1\n".encode("utf-16"))
    assert line_shapes(path, "utf-16", ",", '"', header_lines=1) is None
