"""Datasets the SODA read tests publish, and publishing with a row identifier.

``PERMITS`` has a column of each common type (text, number, floating timestamp,
checkbox, point) and nulls in the typed columns, so every SODA rule shows.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from dsmsyncd.server.main import RunningServer
from tests.server.http.flows import (
    call,
    latest_output_schema,
    new_dataset,
    new_source,
    output_column,
    poll,
    settled,
    transform,
    upload,
)
from tests.support.local_server import API

PERMITS = (
    b"permit,fee,issued,active,location,kind\n"
    b"A1,100,2026-06-04T00:00:00,true,POINT (-122.3 47.6),fence\n"
    b"A2,250.5,2026-06-05T13:30:00,false,POINT (-122.4 47.7),deck\n"
    b"A3,100,,true,,fence\n"
    b"A4,,2026-06-04T00:00:00,,POINT (-73.98 40.75),Garden Shed\n"
)


async def publish_keyed(
    server: RunningServer,
    api: aiohttp.ClientSession,
    data: bytes,
    key: str,
    *,
    fourfour: str | None = None,
    action: str = "update",
) -> str:
    """Publish ``data`` with ``key`` as the row identifier (new dataset or ``fourfour``)."""
    if fourfour is None:
        revision = await new_dataset(api)
    else:
        body = {"action": {"type": action}}
        status, revision = await call(api, "POST", f"{API}/revision/{fourfour}", body)
        assert status == 201, revision
    source = await new_source(api, revision)
    await upload(api, source, data, [len(data)])
    source = await settled(server, api, source["links"]["show"])
    columns = [
        output_column(
            c["field_name"],
            c["transform"]["transform_expr"],
            c["position"],
            is_primary_key=c["field_name"] == key,
        )
        for c in latest_output_schema(source)["output_columns"]
    ]
    resp = await transform(api, source, columns)
    assert resp.status == 201, await resp.text()
    output_schema: dict[str, Any] = (await resp.json())["resource"]
    await server.state.drain()
    apply_body = {"output_schema_id": output_schema["id"]}
    status, job = await call(api, "PUT", revision["links"]["apply"], apply_body)
    assert status == 200, job
    done = await poll(api, job["links"]["show"], "finished_at")
    assert done["status"] == "successful", done["log"]
    return str(revision["resource"]["fourfour"])
