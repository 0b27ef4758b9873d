"""Parsing real files on disk into a real DuckDB database through RowStore.ingest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.storage.ingest import ParseOptions, UnparsableFile, field_names
from dsmsyncd.server.storage.rowstore import RowStore
from tests.server.unit.ingesting import cells, ingest_bytes


def test_parse_options_from_json_fills_defaults() -> None:
    opts = ParseOptions.from_json({"encoding": "latin1", "header_count": 2, "column_header": 2})
    assert opts.to_json() == {
        "header_count": 2,
        "column_header": 2,
        "encoding": "latin1",
        "column_separator": ",",
        "quote_char": '"',
        "parse_source": True,
        "trim_whitespace": True,
        "remove_empty_rows": True,
    }
    assert ParseOptions.from_json(None) == ParseOptions()


@pytest.mark.parametrize(
    "body",
    [
        {"header_count": -1},
        {"header_count": 1, "column_header": 2},
        {"column_separator": ";;"},
        {"column_separator": ";", "quote_char": ";"},
        {"quote_char": "\n"},
        {"trim_whitespace": "yes"},
        {"encoding": "ebcdic"},
    ],
)
def test_parse_options_from_json_invalid_raises(body: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=list(body)[-1]):
        ParseOptions.from_json(body)


def test_parse_options_resolved_tsv_by_content_type_or_name() -> None:
    opts = ParseOptions()
    tsv = opts.resolved(content_type="text/tab-separated-values", filename=None)
    assert tsv.column_separator == "\t"
    assert opts.resolved(content_type=None, filename="x.TSV").column_separator == "\t"
    assert opts.resolved(content_type="text/csv", filename="x.csv").column_separator is None


def test_field_names_normalise_duplicates_and_empties() -> None:
    headers = ["A", " Case Number ", "a", "", "", "Amount ($)", "2020 total", "a"]
    assert field_names(headers) == [
        "a",
        "case_number",
        "a__1",
        "_",
        "__1",
        "amount",
        "_2020_total",
        "a__2",
    ]


async def test_ingest_header_and_guessed_types(store: RowStore, tmp_path: Path) -> None:
    data = (
        b"Name,Amount,Flag,When,Where,Blank\n"
        b"a,1.5,true,2020-01-02,POINT (1 2),\n"
        b"b,,FALSE,2021-03-04T05:06:07,point(-3.5 4),\n"
        b"c,-7,true,,POINT(0 0),\n"
    )
    parsed = await ingest_bytes(store, tmp_path, data)
    assert [c.field_name for c in parsed.columns] == [
        "name",
        "amount",
        "flag",
        "when",
        "where",
        "blank",
    ]
    assert [c.display_name for c in parsed.columns][:2] == ["Name", "Amount"]
    assert [c.guessed_type for c in parsed.columns] == [
        SoqlType.TEXT,
        SoqlType.NUMBER,
        SoqlType.CHECKBOX,
        SoqlType.CALENDAR_DATE,
        SoqlType.POINT,
        SoqlType.TEXT,
    ]
    assert [c.sql_name for c in parsed.columns] == [f"c{i}" for i in range(6)]
    assert [c.position for c in parsed.columns] == list(range(6))
    assert (parsed.total_rows, parsed.row_error_count) == (3, 0)


async def test_ingest_utf8_bom_is_dropped(store: RowStore, tmp_path: Path) -> None:
    parsed = await ingest_bytes(store, tmp_path, "\ufeffname,x\nJosé,1\n".encode())
    assert parsed.columns[0].field_name == "name"
    assert await cells(store, 2) == [(0, "José", "1")]


@pytest.mark.parametrize("encoding", ["latin1", "iso-8859-1", "windows-1252", None])
async def test_ingest_latin1(store: RowStore, tmp_path: Path, encoding: str | None) -> None:
    data = "Straße,x\nJosé,ü\n".encode("latin-1")
    parsed = await ingest_bytes(store, tmp_path, data, encoding=encoding)
    assert parsed.columns[0].display_name == "Straße"
    assert await cells(store, 2) == [(0, "José", "ü")]


async def test_ingest_guesses_every_column_of_a_wide_file(store: RowStore, tmp_path: Path) -> None:
    """Types are counted a batch of columns per statement; none is lost between batches."""
    kinds = [("7", SoqlType.NUMBER), ("x", SoqlType.TEXT), ("true", SoqlType.CHECKBOX)]
    width = 100  # four batches of GUESS_BATCH (32) columns
    header = ",".join(f"c{i}" for i in range(width))
    row = ",".join(kinds[i % 3][0] for i in range(width))
    parsed = await ingest_bytes(store, tmp_path, f"{header}\n{row}\n{row}\n".encode())
    assert [c.guessed_type for c in parsed.columns] == [kinds[i % 3][1] for i in range(width)]


async def test_ingest_guessed_encoding_falls_back_after_sniff(
    store: RowStore, tmp_path: Path
) -> None:
    rows = b"".join(b"row%d,plain\n" % i for i in range(10000))  # > 64 KiB of ASCII
    data = b"a,b\n" + rows + "José,late\n".encode("latin-1")
    parsed = await ingest_bytes(store, tmp_path, data)
    assert (parsed.total_rows, parsed.row_error_count) == (10001, 0)
    assert (await cells(store, 2))[-1] == (10000, "José", "late")


async def test_ingest_utf16(store: RowStore, tmp_path: Path) -> None:
    data = "name,x\nJosé,1\n".encode("utf-16")
    parsed = await ingest_bytes(store, tmp_path, data, encoding="utf16")
    assert parsed.columns[0].field_name == "name"
    assert await cells(store, 2) == [(0, "José", "1")]


async def test_ingest_crlf_quoted_newlines_and_doubled_quotes(
    store: RowStore, tmp_path: Path
) -> None:
    data = b'a,b\r\n"line1\r\nline2",1\r\n"say ""hi""",2\r\n'
    parsed = await ingest_bytes(store, tmp_path, data)
    assert parsed.total_rows == 2
    assert await cells(store, 2) == [(0, "line1\r\nline2", "1"), (1, 'say "hi"', "2")]


async def test_ingest_ragged_rows_become_row_errors(store: RowStore, tmp_path: Path) -> None:
    data = b'a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,"x,y"\n12,13,14\n'
    parsed = await ingest_bytes(store, tmp_path, data)
    assert (parsed.total_rows, parsed.row_error_count) == (3, 2)
    assert [r[0] for r in await cells(store, 3)] == [0, 2, 4]
    assert await store.row_errors("in1", 0, 10) == [
        {
            "offset": 1,
            "error": {
                "type": "too_short",
                "wanted": 3,
                "got": 2,
                "contents": ["4", "5"],
                "line": 3,
                "message": "Line 3: the row has 2 cells but the file has 3 columns: "
                "add the missing cells (empty ones are fine)",
            },
        },
        {
            "offset": 3,
            "error": {
                "type": "too_long",
                "wanted": 3,
                "got": 4,
                "contents": ["9", "10", "11", "x,y"],
                "line": 5,
                "message": "Line 5: the row has 4 cells but the file has 3 columns: "
                "quote the cells that contain the separator ','",
            },
        },
    ]
    assert [e["offset"] for e in await store.row_errors("in1", 1, 1)] == [3]


async def test_ingest_row_errors_of_unknown_table_is_empty(store: RowStore) -> None:
    assert await store.row_errors("nothing_here", 0, 10) == []


async def test_ingest_no_header_numbers_columns(store: RowStore, tmp_path: Path) -> None:
    parsed = await ingest_bytes(store, tmp_path, b"1,x\n2,y\n", header_count=0)
    assert [c.field_name for c in parsed.columns] == ["column_1", "column_2"]
    assert await cells(store, 2) == [(0, "1", "x"), (1, "2", "y")]


async def test_ingest_column_header_picks_named_row(store: RowStore, tmp_path: Path) -> None:
    data = b"Report of 2024,\nCity,Count\nOslo,3\n"
    parsed = await ingest_bytes(store, tmp_path, data, header_count=2, column_header=2)
    assert [c.field_name for c in parsed.columns] == ["city", "count"]
    assert await cells(store, 2) == [(0, "Oslo", "3")]


async def test_ingest_duplicate_and_empty_headers(store: RowStore, tmp_path: Path) -> None:
    parsed = await ingest_bytes(store, tmp_path, b"Name,name,,\n1,2,3,4\n")
    assert [c.field_name for c in parsed.columns] == ["name", "name__1", "_", "__1"]
    assert [c.display_name for c in parsed.columns] == ["Name", "name", "", ""]


async def test_ingest_trim_whitespace_default_and_off(store: RowStore, tmp_path: Path) -> None:
    await ingest_bytes(store, tmp_path, b"a,b\n  x  ,\ty\n")
    assert await cells(store, 2) == [(0, "x", "y")]
    await store.drop_tables("in1")
    await ingest_bytes(store, tmp_path, b"a,b\n  x  ,\ty\n", trim_whitespace=False)
    assert await cells(store, 2) == [(0, "  x  ", "\ty")]


async def test_ingest_trims_every_blank_at_either_end_and_nothing_else(
    store: RowStore, tmp_path: Path
) -> None:
    # Each blank alone at the end (the guard tests only the last character), at the
    # start, a control character that is not a blank, a last character of two bytes.
    cells_in = ["x ", "x\t", "x\x0b", "x\x0c", "\tx", " x \x0b", "x\x01", "é", "xé ", ""]
    quoted = ",".join(f'"{c}"' for c in cells_in)
    data = (",".join(f"c{i}" for i in range(len(cells_in))) + "\n" + quoted + "\n").encode()
    await ingest_bytes(store, tmp_path, data)
    assert await cells(store, len(cells_in)) == [
        (0, "x", "x", "x", "x", "x", "x", "x\x01", "é", "xé", "")
    ]


async def test_ingest_remove_empty_rows_default_and_off(store: RowStore, tmp_path: Path) -> None:
    data = b"a,b\n1,2\n,\n  ,  \n3,4\n"
    parsed = await ingest_bytes(store, tmp_path, data)
    assert parsed.total_rows == 2
    assert [r[0] for r in await cells(store, 2)] == [0, 3]
    await store.drop_tables("in1")
    parsed = await ingest_bytes(store, tmp_path, data, remove_empty_rows=False)
    assert parsed.total_rows == 4


async def test_ingest_tsv_by_content_type(store: RowStore, tmp_path: Path) -> None:
    data = b"a,x\tb\n1,5\t2\n"
    parsed = await ingest_bytes(
        store, tmp_path, data, name="upload.bin", content_type="text/tab-separated-values"
    )
    assert [c.field_name for c in parsed.columns] == ["a_x", "b"]
    assert await cells(store, 2) == [(0, "1,5", "2")]


async def test_ingest_tsv_by_file_name(store: RowStore, tmp_path: Path) -> None:
    parsed = await ingest_bytes(store, tmp_path, b"a\tb\n1\t2\n", name="data.tsv")
    assert len(parsed.columns) == 2


async def test_ingest_separator_and_quote_char(store: RowStore, tmp_path: Path) -> None:
    data = b"a;b\n'x;y';'it''s'\n"
    await ingest_bytes(store, tmp_path, data, column_separator=";", quote_char="'")
    assert await cells(store, 2) == [(0, "x;y", "it's")]


async def test_ingest_binary_garbage_is_unparsable(store: RowStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 20
    with pytest.raises(UnparsableFile, match="binary"):
        await ingest_bytes(store, tmp_path, data)


async def test_ingest_empty_file_is_unparsable(store: RowStore, tmp_path: Path) -> None:
    with pytest.raises(UnparsableFile, match="empty"):
        await ingest_bytes(store, tmp_path, b"")


async def test_ingest_too_few_header_rows_is_unparsable(store: RowStore, tmp_path: Path) -> None:
    with pytest.raises(UnparsableFile, match="header_count"):
        await ingest_bytes(store, tmp_path, b"a,b\n", header_count=3, column_header=1)


async def test_ingest_header_only_gives_zero_rows(store: RowStore, tmp_path: Path) -> None:
    parsed = await ingest_bytes(store, tmp_path, b"a,b\n")
    assert (parsed.total_rows, len(parsed.columns)) == (0, 2)


async def test_ingest_rejects_unsafe_table_name(store: RowStore, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"a\n1\n")
    with pytest.raises(ValueError, match="table name"):
        await store.ingest_upload(
            path, 'x"; drop', ParseOptions(), content_type=None, filename=None
        )


async def test_ingest_without_type_guessing_reports_text(store: RowStore, tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"n,flag\n1,true\n2,false\n")
    [parsed] = await store.ingest_upload(
        path, "in1", ParseOptions(), content_type=None, filename=None, guess_types=False
    )
    assert [c.guessed_type for c in parsed.columns] == [SoqlType.TEXT, SoqlType.TEXT]
    assert await cells(store, 2) == [(0, "1", "true"), (1, "2", "false")]


async def test_ingest_guesses_from_first_rows_only(
    store: RowStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later cell that does not fit the guess becomes a cell error downstream."""
    monkeypatch.setattr("dsmsyncd.server.storage.ingest.guess.GUESS_SAMPLE_ROWS", 2)
    parsed = await ingest_bytes(store, tmp_path, b"n\n1\n2\nnot a number\n")
    assert parsed.columns[0].guessed_type == SoqlType.NUMBER
    assert parsed.total_rows == 3


async def test_ingest_trims_every_blank_at_both_ends(store: RowStore, tmp_path: Path) -> None:
    data = b'a,b,c\n"\tx \r\n",\x0by\x0c,"in  side"\n'
    await ingest_bytes(store, tmp_path, data)
    assert await cells(store, 3) == [(0, "x", "y", "in  side")]


async def test_ingest_row_errors_empty_rows_and_offsets_together(
    store: RowStore, tmp_path: Path
) -> None:
    data = b"a,b\n1,2\n3\n,\n4,5\n6,7,8\n9,10\n"
    parsed = await ingest_bytes(store, tmp_path, data)
    assert (parsed.total_rows, parsed.row_error_count) == (3, 2)
    assert [r[0] for r in await cells(store, 2)] == [0, 3, 5]
    assert [e["offset"] for e in await store.row_errors("in1", 0, 10)] == [1, 4]


@pytest.mark.parametrize(
    "data",
    [
        b"\n\na,b\n1,2\n\n3,4\n",
        b"   \na,b\n1,2\n3,4\n",
        b"a,b\n1,2\n   \n3,4\n",
        b"\n  a,b\n  1,2\n  3,4\n\n",
    ],
)
async def test_ingest_blank_and_whitespace_lines_are_no_rows(
    store: RowStore, tmp_path: Path, data: bytes
) -> None:
    parsed = await ingest_bytes(store, tmp_path, data)
    assert [c.field_name for c in parsed.columns] == ["a", "b"]
    assert (parsed.total_rows, parsed.row_error_count) == (2, 0)
    assert [row[1:] for row in await cells(store, 2)] == [("1", "2"), ("3", "4")]


def test_parse_options_stored_keeps_an_unchosen_separator_open() -> None:
    opts = ParseOptions.from_json({})
    assert opts.to_stored()["column_separator"] is None
    assert opts.to_json()["column_separator"] == ","
    assert opts.to_json(filename="a.tsv")["column_separator"] == "\t"
    chosen = ParseOptions.from_json({"column_separator": ";"})
    assert chosen.to_json(content_type="text/tab-separated-values")["column_separator"] == ";"
