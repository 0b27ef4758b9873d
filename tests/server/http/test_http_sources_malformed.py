"""Malformed uploads through the real server: the input schema accounts for every row.

The files are big enough for DuckDB to read them in parallel (see
``test_ingest_malformed``). Each is uploaded in chunks, parsed, checked on the input
schema (``total_rows``, ``num_row_errors``) and its ``row_errors`` page, then applied to
a new dataset whose row count must be exactly the good rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from dsmsyncd.server.storage.ingest.census import MAX_ROW_CHARS
from tests.server.http.flows import (
    fill,
    latest_output_schema,
    new_dataset,
    new_source,
    settled,
    upload,
)
from tests.server.support.malformed_files import (
    BIG_LINES,
    big_cell_file,
    unterminated_file,
    unterminated_message,
)

CHUNK = 1024 * 1024  # aiohttp warns about larger bodies sent as bytes


async def _publish(
    server: RunningServer, api: aiohttp.ClientSession, data: bytes
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """Upload ``data`` to a new dataset and apply it: (input schema, row errors, rows)."""
    rev = await new_dataset(api)
    source = await new_source(api, rev)
    await upload(api, source, data, [CHUNK] * (len(data) // CHUNK))
    shown = await settled(server, api, source["links"]["show"])
    assert shown["resource"]["failed_at"] is None, shown["resource"]["failure_details"]
    schema = shown["resource"]["schemas"][0]
    url = fill(shown["links"]["input_schema_links"]["row_errors"], input_schema_id=schema["id"])
    async with api.get(f"{url}?limit=100&offset=0") as resp:
        assert resp.status == 200, await resp.text()
        errors: list[dict[str, Any]] = await resp.json()
    output = latest_output_schema(shown)
    async with api.put(rev["links"]["apply"], json={"output_schema_id": output["id"]}) as resp:
        assert resp.status == 200, await resp.text()
        job = await resp.json()
    finished = await settled(server, api, job["links"]["show"])
    assert finished["resource"]["status"] == "successful", finished["resource"]["log"]
    fourfour = rev["resource"]["fourfour"]
    async with api.get(f"/resource/{fourfour}.json?$select=count(*)") as resp:
        assert resp.status == 200, await resp.text()
        [count] = await resp.json()
    return schema, errors, int(count["count"])


async def test_unterminated_quote_upload_keeps_the_good_row_and_names_the_broken_one(
    server: RunningServer, api: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data = unterminated_file(tmp_path / "u.csv").read_bytes()
    schema, errors, published = await _publish(server, api, data)

    assert (schema["total_rows"], schema["num_row_errors"], published) == (1, 1, 1)
    [error] = errors
    assert error["offset"] == 1
    assert (error["error"]["type"], error["error"]["line"]) == ("unquoted_value", 3)
    assert error["error"]["message"] == unterminated_message(3, BIG_LINES + 1)


async def test_oversized_cell_upload_is_one_row_error_not_an_empty_dataset(
    server: RunningServer, api: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data = big_cell_file(tmp_path / "c.csv", newlines=True).read_bytes()
    schema, errors, published = await _publish(server, api, data)

    assert (schema["total_rows"], schema["num_row_errors"], published) == (3, 1, 3)
    [error] = errors
    assert (error["offset"], error["error"]["type"]) == (1, "line_too_long")
    assert f"over the limit of {MAX_ROW_CHARS:,} characters per row" in error["error"]["message"]
