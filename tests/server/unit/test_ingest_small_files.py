"""A small file is parsed in one transaction, its rows numbered by the load itself.

Up to ``NUMBERED_LOAD_BYTES`` the parse takes a path of its own (issue 9: a third of a
small file's DuckDB statements were the offsets' ALTER and UPDATE, the row errors table
and counts): the same file must give the same rows, offsets and row errors on both
paths, which these tests check by parsing each file twice, once with the threshold at 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.server.storage import ingest
from dsmsyncd.server.storage.rowstore import RowStore
from dsmsyncd.server.storage.sql import relation_exists
from tests.server.unit.ingesting import cells, ingest_bytes

FILES = {
    "clean": b"id,name\n1,a\n2,b\n3,c\n",
    "row errors": b"id,name\n1,a\n2,b,extra\n3,c\nshort\n4,d\n",
    "blank and empty rows": b"id,name\n1,a\n\n2,b\n , \n3,c\n",
    "quoted newlines": b'id,name\n1,"a\nb"\n\n2,"c"\n3,d\n',
    "stray quote": b"id,name\n1,5'11\"\n2,b\n",
    "text after a closing quote": b'id,name\n1,"a"b\n2,c\n',
    # As many rows as lines: the rejects go unread, and empty rows are told by the bytes.
    "an empty row on a line of its own": b"id,name\n1,a\n,\n2,b\n",
    "quoted empty cells and blanks": b'id,name\n1,a\n"" , " "\n2,b\n',
    "crlf and a row error": b"id,name\r\n1,a\r\n2,b,extra\r\n3,c\r\n",
    "old Mac line ends": b"id,name\r1,a\r2,b\r",
    "latin-1 late": b"id,name\n"
    + b"".join(b"%d,n%d\n" % (i, i) for i in range(5000))
    + b"9,\xe9\n",
}


async def _parsed(store: RowStore, tmp_path: Path, data: bytes) -> dict[str, Any]:
    parsed = await ingest_bytes(store, tmp_path, data)
    return {
        "counts": (parsed.total_rows, parsed.row_error_count),
        "types": [c.guessed_type for c in parsed.columns],
        "cells": await cells(store, len(parsed.columns)),
        "errors": await store.row_errors("in1", 0, 100),
    }


@pytest.mark.parametrize("name", sorted(FILES))
async def test_a_small_file_parses_the_same_on_both_paths(
    store: RowStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    small = await _parsed(store, tmp_path, FILES[name])
    monkeypatch.setattr(ingest, "NUMBERED_LOAD_BYTES", 0)
    large = await _parsed(store, tmp_path, FILES[name])

    assert small == large
    assert small["cells"], "every file here has rows"


async def test_a_row_error_keeps_its_ordinal_so_the_rows_after_it_keep_theirs(
    store: RowStore, tmp_path: Path
) -> None:
    good = await _parsed(store, tmp_path, b"id,name\n1,a\n2,b\n3,c\n")
    bad = await _parsed(store, tmp_path, b"id,name\n1,a\n2,b,extra\n3,c\n")

    assert good["cells"] == [(0, "1", "a"), (1, "2", "b"), (2, "3", "c")]
    assert bad["cells"] == [(0, "1", "a"), (2, "3", "c")]
    assert [e["offset"] for e in bad["errors"]] == [1]


async def test_a_file_without_row_errors_makes_no_row_errors_table(
    store: RowStore, tmp_path: Path
) -> None:
    parsed = await ingest_bytes(store, tmp_path, FILES["clean"])

    assert parsed.row_error_count == 0
    assert await store._run(relation_exists, "in1")
    assert not await store._run(relation_exists, "in1__row_errors")
    assert await store.row_errors("in1", 0, 10) == []
    await store.drop_tables("in1")
    assert not await store._run(relation_exists, "in1")


async def test_rows_just_under_the_threshold_are_numbered_in_file_order(
    store: RowStore, tmp_path: Path
) -> None:
    count = (ingest.NUMBERED_LOAD_BYTES - 8) // 17  # rows of 17 bytes after the header
    data = b"id,name\n" + b"".join(b"%07d,xxxxxxxx\n" % i for i in range(count))
    assert ingest.NUMBERED_LOAD_BYTES - 17 < len(data) <= ingest.NUMBERED_LOAD_BYTES

    parsed = await ingest_bytes(store, tmp_path, data)

    def misplaced(cur: Any) -> int:
        row = cur.execute("SELECT count(*) FROM in1 WHERE CAST(c0 AS BIGINT) <> __offset")
        return int(row.fetchone()[0])

    assert parsed.total_rows == count
    assert await store._run(misplaced) == 0


async def test_a_failed_small_parse_leaves_no_table_and_the_store_usable(
    store: RowStore, tmp_path: Path
) -> None:
    # DuckDB refuses the load itself (inside the parse's transaction): the quote is the
    # separator the file turns out to have.
    with pytest.raises(ingest.UnparsableFile) as caught:
        await ingest_bytes(store, tmp_path, b"id\tname\n1\ta\n", quote_char="\t")
    assert caught.value.key == "unparsable_file"
    assert caught.value.message.startswith("The file cannot be parsed as delimited text (")
    assert not await store._run(relation_exists, "in1")
    parsed = await ingest_bytes(store, tmp_path, FILES["clean"])
    assert parsed.total_rows == 3


async def test_a_small_parse_replaces_an_earlier_parse_and_its_row_errors(
    store: RowStore, tmp_path: Path
) -> None:
    # A parse resumed after a restart finds the tables of the first try: the small
    # path replaces the input table in its load and drops the row errors in its
    # transaction.
    first = await _parsed(store, tmp_path, FILES["row errors"])
    assert first["errors"]

    again = await _parsed(store, tmp_path, FILES["clean"])

    assert again["counts"] == (3, 0)
    assert again["cells"] == [(0, "1", "a"), (1, "2", "b"), (2, "3", "c")]
    assert again["errors"] == []
    assert not await store._run(relation_exists, "in1__row_errors")
