"""Malformed files lose no row: each record is a row or a row error that names it.

DuckDB splits a file of more than about 8 MB into parts read in parallel; on malformed
input its reader then dropped rows silently (an unterminated quote on the second data
row of a 12 MB file kept 194,445 of 600,000 rows and blamed the first row). These files
are generated big enough to take that path, and every count is exact.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dsmsyncd.server.storage.ingest.census import MAX_ROW_CHARS, RAW_KEEP
from dsmsyncd.server.storage.rowstore import RowStore
from tests.server.support.malformed_files import (
    BIG_LINES,
    CELL_MB,
    big_cell_file,
    unterminated_file,
    unterminated_message,
)
from tests.server.unit.ingesting import cells, ingest, ingest_bytes


async def test_unterminated_quote_early_in_a_big_file_is_one_row_error_naming_it(
    store: RowStore, tmp_path: Path
) -> None:
    path = unterminated_file(tmp_path / "unterminated.csv")
    parsed = await ingest(store, path)

    assert (parsed.total_rows, parsed.row_error_count) == (1, 1)
    assert await cells(store, 2) == [(0, "1", "a")]
    [error] = await store.row_errors("in1", 0, 10)
    assert error["offset"] == 1
    body = error["error"]
    assert (body["type"], body["line"]) == ("unquoted_value", 3)
    assert body["message"] == unterminated_message(3, BIG_LINES + 1)
    assert body["raw"].startswith('2,"b\n3,name 0000003\n4,name 0000004\n')
    assert len(body["raw"]) == RAW_KEEP
    assert body["contents"][0] == "2"
    # Every data line is accounted for: the good row, and the lines the error spans.
    spanned = BIG_LINES + 1 - body["line"] + 1
    assert parsed.total_rows + spanned == BIG_LINES


async def test_quote_closed_lines_later_makes_one_error_and_parsing_goes_on(
    store: RowStore, tmp_path: Path
) -> None:
    parsed = await ingest_bytes(
        store, tmp_path, b'id,name\n1,a\n2,"b\n3,c\n4,d"e\n5,f\n', name="late.csv"
    )

    assert (parsed.total_rows, parsed.row_error_count) == (2, 1)
    assert await cells(store, 2) == [(0, "1", "a"), (2, "5", "f")]
    [error] = await store.row_errors("in1", 0, 10)
    assert error["offset"] == 1
    assert error["error"]["type"] == "unquoted_value"
    assert error["error"]["line"] == 3
    assert error["error"]["raw"] == '2,"b\n3,c\n4,d"e'
    assert error["error"]["message"] == (
        "Lines 3-5: text follows the closing quote of a quoted cell on line 5: quote the "
        'whole cell and double each " inside it'
    )


async def test_a_stray_quote_in_an_unquoted_cell_is_kept_as_text(
    store: RowStore, tmp_path: Path
) -> None:
    parsed = await ingest_bytes(
        store, tmp_path, b'id,height\n1,5\'11"\n2,"multi\nline"\n3,6\'0"\n4,x\n', name="stray.csv"
    )

    assert (parsed.total_rows, parsed.row_error_count) == (4, 0)
    assert [r[2] for r in await cells(store, 2)] == ["5'11\"", "multi\nline", "6'0\"", "x"]


async def test_text_after_a_closing_quote_is_a_row_error_with_its_raw_text(
    store: RowStore, tmp_path: Path
) -> None:
    parsed = await ingest_bytes(store, tmp_path, b'id,name\n1,"ab"c\n2,x\n', name="junk.csv")

    assert (parsed.total_rows, parsed.row_error_count) == (1, 1)
    [error] = await store.row_errors("in1", 0, 10)
    assert error == {
        "offset": 0,
        "error": {
            "type": "unquoted_value",
            "wanted": 2,
            "got": 2,
            "contents": ["1", "abc"],
            "line": 2,
            "raw": '1,"ab"c',
            "message": "Line 2: text follows the closing quote of a quoted cell: quote the "
            'whole cell and double each " inside it',
        },
    }


def scattered_file(path: Path) -> tuple[dict[int, tuple[int, list[str]]], int]:
    """Good rows (some with quoted commas and newlines) and, scattered, rows of 2 or 4
    cells; returns {ordinal: (line, cells)} of the bad rows, and the record count."""
    rng = random.Random(11)
    bad: dict[int, tuple[int, list[str]]] = {}
    line = 2
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,note\n")
        for i in range(BIG_LINES):
            draw = rng.random()
            if draw < 0.001:
                cells = [str(i), f"short {i}"]
            elif draw < 0.002:
                cells = [str(i), f"long {i}", "x", "y"]
            elif draw < 0.01:
                cells = [str(i), f'"name, {i}"', f'"two\nlines {i}"']
            else:
                cells = [str(i), f"name {i}", f"note {i}"]
            if len(cells) != 3:
                bad[i] = (line, cells)
            text = ",".join(cells)
            out.write(text + "\n")
            line += text.count("\n") + 1
    return bad, BIG_LINES


async def test_rows_of_too_many_or_too_few_cells_are_counted_exactly(
    store: RowStore, tmp_path: Path
) -> None:
    bad, records = scattered_file(tmp_path / "scattered.csv")
    parsed = await ingest(store, tmp_path / "scattered.csv")

    assert parsed.row_error_count == len(bad)
    assert parsed.total_rows + parsed.row_error_count == records
    errors = await store.row_errors("in1", 0, len(bad) + 10)
    assert {e["offset"]: (e["error"]["line"], e["error"]["contents"]) for e in errors} == bad
    first = errors[0]["error"]
    got = len(first["contents"])
    fix = (
        "add the missing cells (empty ones are fine)"
        if got < 3
        else "quote the cells that contain the separator ','"
    )
    assert first["type"] == ("too_short" if got < 3 else "too_long")
    assert first["message"] == (
        f"Line {first['line']}: the row has {got} cells but the file has 3 columns: {fix}"
    )
    rows = await cells(store, 3)
    assert [r[0] for r in rows] == [i for i in range(records) if i not in bad]
    quoted = next(r for r in rows if "\n" in r[3])
    assert quoted[2] == f"name, {quoted[1]}"
    assert quoted[3] == f"two\nlines {quoted[1]}"


@pytest.mark.parametrize("newlines", [True, False], ids=["multi-line", "one-line"])
async def test_a_cell_over_the_row_limit_is_one_row_error_between_good_rows(
    store: RowStore, tmp_path: Path, newlines: bool
) -> None:
    path = big_cell_file(tmp_path / "cell.csv", newlines=newlines)
    parsed = await ingest(store, path)

    assert (parsed.total_rows, parsed.row_error_count) == (3, 1)
    assert await cells(store, 2) == [(0, "1", "before"), (2, "3", "after"), (3, "4", "last")]
    [error] = await store.row_errors("in1", 0, 10)
    body = error["error"]
    assert (error["offset"], body["type"], body["line"]) == (1, "line_too_long", 3)
    size = CELL_MB * 1_000_000 + len('2,""\n')
    last = 3 + CELL_MB * 10_000 if newlines else 3
    where = f"Lines 3-{last}" if newlines else "Line 3"
    assert body["message"] == (
        f"{where}: the row is {size:,} characters long, over the limit of "
        f"{MAX_ROW_CHARS:,} characters per row: shorten its longest cell, or upload the "
        f"file with parse_source false to store it unparsed (the first {RAW_KEEP:,} "
        "characters of the row are shown)"
    )


async def test_a_file_of_one_oversized_row_has_no_rows_and_one_error(
    store: RowStore, tmp_path: Path
) -> None:
    path = tmp_path / "only.csv"
    path.write_text('id,body\n1,"' + "y" * (MAX_ROW_CHARS + 10) + '"\n', encoding="utf-8")
    parsed = await ingest(store, path)

    assert (parsed.total_rows, parsed.row_error_count) == (0, 1)
    [error] = await store.row_errors("in1", 0, 10)
    assert error["error"]["type"] == "line_too_long"
    assert error["error"]["message"].startswith(
        f"Line 2: the row is {MAX_ROW_CHARS + 15:,} characters long, over the limit"
    )


async def test_big_crlf_file_with_bom_parses_every_row(store: RowStore, tmp_path: Path) -> None:
    path = tmp_path / "crlf.csv"
    with path.open("wb") as out:
        out.write(b"\xef\xbb\xbfid,name\r\n")
        out.write(b"".join(b"%d,name %d\r\n" % (i, i) for i in range(BIG_LINES)))
    parsed = await ingest(store, path)

    assert (parsed.total_rows, parsed.row_error_count) == (BIG_LINES, 0)
    assert parsed.columns[0].field_name == "id"
    rows = await cells(store, 2)
    assert rows[0] == (0, "0", "name 0")
    assert rows[-1] == (BIG_LINES - 1, str(BIG_LINES - 1), f"name {BIG_LINES - 1}")


async def test_crlf_bom_quoted_newlines_and_blank_lines_keep_every_row(
    store: RowStore, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b'\xef\xbb\xbfid,name\r\n1,"two\r\nlines"\r\n\r\n2,b\r\n3\r\n4,"say ""hi"""\r\n\r\n'
    )
    parsed = await ingest(store, path)

    assert (parsed.total_rows, parsed.row_error_count) == (3, 1)
    assert [r[1:] for r in await cells(store, 2)] == [
        ("1", "two\r\nlines"),
        ("2", "b"),
        ("4", 'say "hi"'),
    ]
    [error] = await store.row_errors("in1", 0, 10)
    assert (error["offset"], error["error"]["line"], error["error"]["type"]) == (3, 6, "too_short")


async def test_undecodable_rows_of_a_utf8_file_are_row_errors(
    store: RowStore, tmp_path: Path
) -> None:
    parsed = await ingest_bytes(
        store,
        tmp_path,
        b"id,name\n1,ann\n2,Jos\xe9\n3,cy\n",
        name="mixed-encoding.csv",
        encoding="utf-8",
    )

    assert (parsed.total_rows, parsed.row_error_count) == (2, 1)
    assert [r[1:] for r in await cells(store, 2)] == [("1", "ann"), ("3", "cy")]
    [error] = await store.row_errors("in1", 0, 10)
    assert (error["offset"], error["error"]["type"]) == (1, "invalid_encoding")
    assert error["error"]["message"] == (
        "Line 3: the row has bytes that are not valid in the file's encoding: set encoding "
        "in the parse options (for example latin1 or windows-1252)"
    )
