"""Every parse option of digest §1.2.1 honoured on a real upload, and shown as hosted.

Each test uploads a small file over HTTP with one option set (or left to the file, as a
TSV's separator is) and reads the parsed rows back from the guessed output schema.
"""

from __future__ import annotations

import codecs

import aiohttp
import pytest

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import new_dataset, new_source
from tests.server.http.format_flows import CSV, TSV, field_names, parsed_rows, upload_as


async def test_tsv_name_shows_a_tab_separator_before_any_bytes(
    api: aiohttp.ClientSession,
) -> None:
    revision = await new_dataset(api)
    tsv = await new_source(api, revision, source_type={"type": "upload", "filename": "cities.tsv"})
    csv = await new_source(api, revision, source_type={"type": "upload", "filename": "a.csv"})
    assert tsv["resource"]["parse_options"]["column_separator"] == "\t"
    assert csv["resource"]["parse_options"] == {
        "header_count": 1,
        "column_header": 1,
        "encoding": None,
        "column_separator": ",",
        "quote_char": '"',
        "parse_source": True,
        "trim_whitespace": True,
        "remove_empty_rows": True,
    }


async def test_tsv_content_type_splits_on_tabs_whatever_the_name(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"city\tnote\nOslo\tcapital, Norway\n"
    source = await upload_as(server, api, data, filename="export.txt", content_type=TSV)
    assert source["resource"]["parse_options"]["column_separator"] == "\t"
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["city", "note"]
    assert rows == [["Oslo", "capital, Norway"]]


@pytest.mark.parametrize("separator", [";", "|", "\t"])
async def test_column_separator_option(
    server: RunningServer, api: aiohttp.ClientSession, separator: str
) -> None:
    data = f"a{separator}b\n1,5{separator}x\n".encode()
    source = await upload_as(
        server,
        api,
        data,
        filename="d.csv",
        content_type=CSV,
        parse_options={"column_separator": separator},
    )
    assert source["resource"]["parse_options"]["column_separator"] == separator
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["a", "b"]
    assert rows == [["1,5", "x"]]


async def test_quote_char_option_with_doubled_quote_as_escape(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"name,said\n'Smith, J','it''s \"fine\"'\n"
    source = await upload_as(
        server, api, data, filename="q.csv", content_type=CSV, parse_options={"quote_char": "'"}
    )
    _schema, rows = await parsed_rows(api, source)
    assert rows == [["Smith, J", 'it\'s "fine"']]


async def test_header_count_and_column_header(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"Report of 2024,\nCity,Population\ncity name,people\nOslo,709037\n"
    source = await upload_as(
        server,
        api,
        data,
        filename="r.csv",
        content_type=CSV,
        parse_options={"header_count": 3, "column_header": 2},
    )
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["city", "population"]
    assert [c["display_name"] for c in schema["input_columns"]] == ["City", "Population"]
    assert rows == [["Oslo", "709037"]]


async def test_header_count_zero_numbers_the_columns(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    source = await upload_as(
        server,
        api,
        b"Oslo,1\nBergen,2\n",
        filename="n.csv",
        content_type=CSV,
        parse_options={"header_count": 0},
    )
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["column_1", "column_2"]
    assert rows == [["Oslo", "1"], ["Bergen", "2"]]


async def test_leading_blank_lines_and_indented_lines_give_no_extra_rows(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"\n   \n  name,age\n  Ann,3\n   \n  Bob,4\n\n"
    source = await upload_as(server, api, data, filename="i.csv", content_type=CSV)
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["name", "age"]
    assert [c["display_name"] for c in schema["input_columns"]] == ["name", "age"]
    assert schema["total_rows"] == 2
    assert schema["num_row_errors"] == 0
    assert rows == [["Ann", "3"], ["Bob", "4"]]


async def test_trim_whitespace_off_keeps_the_blanks(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"name,city\n  Ann , Oslo\n"
    source = await upload_as(
        server,
        api,
        data,
        filename="t.csv",
        content_type=CSV,
        parse_options={"trim_whitespace": False},
    )
    _schema, rows = await parsed_rows(api, source)
    assert rows == [["  Ann ", " Oslo"]]


async def test_remove_empty_rows_off_keeps_rows_of_empty_cells(
    server: RunningServer, api: aiohttp.ClientSession
) -> None:
    data = b"a,b\n1,2\n,\n3,4\n"
    kept = await upload_as(
        server,
        api,
        data,
        filename="e.csv",
        content_type=CSV,
        parse_options={"remove_empty_rows": False},
    )
    dropped = await upload_as(server, api, data, filename="e.csv", content_type=CSV)
    assert (await parsed_rows(api, kept))[0]["total_rows"] == 3
    assert (await parsed_rows(api, dropped))[0]["total_rows"] == 2


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("latin1", "name,city\nJosé,Malmö\n".encode("latin-1")),
        (None, "name,city\nJosé,Malmö\n".encode("latin-1")),
        ("utf16", codecs.BOM_UTF16_LE + "name,city\nJosé,Malmö\n".encode("utf-16-le")),
        (None, codecs.BOM_UTF16_BE + "name,city\nJosé,Malmö\n".encode("utf-16-be")),
        ("utf8", codecs.BOM_UTF8 + "name,city\nJosé,Malmö\n".encode()),
    ],
)
async def test_encodings(
    server: RunningServer, api: aiohttp.ClientSession, encoding: str | None, data: bytes
) -> None:
    source = await upload_as(
        server,
        api,
        data,
        filename="enc.csv",
        content_type=CSV,
        parse_options={"encoding": encoding},
    )
    schema, rows = await parsed_rows(api, source)
    assert field_names(schema) == ["name", "city"]
    assert rows == [["José", "Malmö"]]


@pytest.mark.parametrize(
    ("options", "key", "said"),
    [
        ({"column_separator": "||"}, "column_separator", "single character"),
        ({"quote_char": ","}, "quote_char", "must be different"),
        ({"encoding": "ebcdic"}, "encoding", "encoding must be null"),
        ({"header_count": 1, "column_header": 3}, "column_header", "between 1 and"),
        ({"sheet_name": 3}, "sheet_name", "must be a string or null"),
    ],
)
async def test_bad_parse_option_is_refused_naming_it(
    api: aiohttp.ClientSession, options: dict[str, object], key: str, said: str
) -> None:
    revision = await new_dataset(api)
    body = {"source_type": {"type": "upload", "filename": "x.csv"}, "parse_options": options}
    async with api.post(revision["links"]["create_source"], json=body) as resp:
        assert resp.status == 400
        error = await resp.json()
    assert f"parse_options.{key}" in str(error)
    assert said in str(error)
