"""Datasets on the local server, made and read through the daemon's client as a user would.

The daemon wing's tests seed a dataset (``publish_dataset``) and then check what a run
did to it (``count_rows``, ``all_rows``, ``open_revisions``); end-to-end tests read it
back over plain HTTP instead (``tests/daemon/e2e/plain_http.py``).
"""

from __future__ import annotations

from typing import Any

from dsmsyncd.dsmapi import Credentials, DsmapiClient, RetryPolicy, Revision
from dsmsyncd.pipeline.upload import upload_blob
from tests.daemon.support.blobs import BytesBlob
from tests.support.local_server import ROBOT

FAST_RETRY = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)


def robot_client(url: str) -> DsmapiClient:
    """The daemon's client signed in as ``robot`` at ``url`` (the server, or a proxy of it)."""
    return DsmapiClient(url, Credentials(username=ROBOT[0], password=ROBOT[1]), retry=FAST_RETRY)


async def publish_dataset(
    client: DsmapiClient, csv: bytes | None, *, row_id: str | None = None, name: str = "Rows"
) -> str:
    """A new dataset, published with ``csv`` (or with no data; row id set in that first
    revision); its fourfour."""
    revision = await client.create_dataset({"name": name})
    schema_id = None
    if csv is not None:
        source = await client.create_upload_source(revision, "seed.csv")
        await upload_blob(client, source, BytesBlob("seed.csv", csv))
        schema = await client.wait_for_output_schema(source)
        if row_id is not None:
            columns = [{**c, "is_primary_key": c["field_name"] == row_id} for c in schema.columns]
            schema = await client.transform(source, schema.input_schema_id, columns)
            schema = await client.wait_for_schema_completion(source, schema)
        schema_id = schema.id
    task_set = await client.apply(revision, schema_id)
    done = await client.wait_for_task_set(revision, task_set)
    assert done.status == "successful", done.log
    return revision.fourfour


async def count_rows(client: DsmapiClient, fourfour: str) -> int:
    rows = await client.read_rows(fourfour, {"$select": "count(*)"})
    return int(rows[0]["count"])


async def all_rows(client: DsmapiClient, fourfour: str, order: str = "id") -> list[dict[str, Any]]:
    return await client.read_rows(fourfour, {"$order": order})


async def open_revisions(client: DsmapiClient, fourfour: str) -> list[Revision]:
    return [r for r in await client.list_revisions(fourfour) if r.closed_at is None]
