"""Uploading a file of any format over raw HTTP and reading what it parsed into.

``upload_as`` sends the bytes as the SDK would for that format (its content type in
``initiate``, the file name on the source), with any parse options, and returns the
settled source; ``parsed_rows`` reads an input schema's first output schema's rows as
the cells' values.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    commit_url,
    new_dataset,
    new_source,
    schema_link,
    send_chunk,
    settled,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLS = "application/vnd.ms-excel"
GEOJSON = "application/vnd.geo+json"
KML = "application/vnd.google-earth.kml+xml"
ZIP = "application/zip"
TSV = "text/tab-separated-values"
CSV = "text/csv"


async def upload_as(
    server: RunningServer,
    api: aiohttp.ClientSession,
    data: bytes,
    *,
    filename: str,
    content_type: str,
    parse_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new dataset's upload source holding ``data``, once its parse has settled."""
    revision = await new_dataset(api)
    source_type = {"type": "upload", "filename": filename}
    source = await new_source(api, revision, source_type=source_type, parse_options=parse_options)
    initiate = {"content_type": content_type}
    async with api.post(source["links"]["initiate"], json=initiate) as resp:
        assert resp.status == 200, await resp.text()
    await send_chunk(api, source, 0, 0, data)
    async with api.post(commit_url(source, 0, len(data))) as resp:
        assert resp.status == 200, await resp.text()
    return await settled(server, api, source["links"]["show"])


def failure(source: dict[str, Any]) -> dict[str, Any]:
    """The failure details of a source that must have failed."""
    resource = source["resource"]
    assert resource["failed_at"] is not None, resource
    assert resource["schemas"] == []
    details: dict[str, Any] = resource["failure_details"]
    return details


async def parsed_rows(
    api: aiohttp.ClientSession, source: dict[str, Any], schema_index: int = 0
) -> tuple[dict[str, Any], list[list[Any]]]:
    """(input schema, its rows' cell values) of one input schema of a parsed source."""
    resource = source["resource"]
    assert resource["failed_at"] is None, resource["failure_details"]
    schemas = sorted(resource["schemas"], key=lambda s: s["id"])
    schema = schemas[schema_index]
    output = max(schema["output_schemas"], key=lambda o: o["id"])
    url = schema_link(source, "rows", input_schema_id=schema["id"], output_schema_id=output["id"])
    async with api.get(f"{url}?limit=100&offset=0") as resp:
        assert resp.status == 200, await resp.text()
        reply = await resp.json()
    rows = [entry["row"] for entry in reply if "row" in entry]  # the schema comes first
    return schema, [[cell.get("ok", cell) for cell in row] for row in rows]


def field_names(schema: dict[str, Any]) -> list[str]:
    return [c["field_name"] for c in sorted(schema["input_columns"], key=lambda c: c["position"])]
