"""``dsmsyncd demo``: the main job on the embedded default, on a machine with no account.

Starts the local DSMAPI server over HTTPS (with a certificate made for the demo's
data dir), publishes the bundled sample CSV through a revision whose transform joins
``street_number`` and ``street_name`` into ``address``, reads the rows back over SODA
and prints where to read them. Everything goes through the same client and chunked
uploader the daemon uses, over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib import resources
from pathlib import Path

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.dsmapi import Credentials, DsmapiClient, DsmapiError
from dsmsyncd.upload import upload_blob

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"

# Output columns of the demo dataset: each is a transform over the CSV's input columns.
DEMO_COLUMNS = [
    ("permit_id", "Permit", "`permit_id`"),
    ("address", "Address", "`street_number` || ' ' || `street_name`"),
    ("issued", "Issued", "to_floating_timestamp(`issued`)"),
    ("fee", "Fee", "to_number(`fee`)"),
    ("residential", "Residential", "to_boolean(`residential`)"),
]


def sample_csv() -> Path:
    return Path(str(resources.files("dsmsyncd") / "samples" / "permits.csv"))


def run_demo(data_dir: Path, listen: tuple[str, int], *, keep_serving: bool = False) -> int:
    try:
        return asyncio.run(_demo(data_dir.resolve(), listen, keep_serving))
    except KeyboardInterrupt:
        return 0


async def _demo(data_dir: Path, listen: tuple[str, int], keep_serving: bool) -> int:
    from dsmsyncd.server.main import ServeOptions, start_server

    options = ServeOptions(
        listen_host=listen[0],
        listen_port=listen[1],
        data_dir=data_dir / "server",
        users=[(DEMO_USER, DEMO_PASSWORD)],
        tokens=[],
        tls_cert=None,
        tls_key=None,
        tls_self_signed=True,
    )
    server = await start_server(options)
    try:
        print(f"local DSMAPI server: {server.url} (CA certificate: {server.ca_path})")
        fourfour = await _publish(server.url, str(server.ca_path) if server.ca_path else None)
        if fourfour is None:
            return 1
        _farewell(keep_serving)
        if keep_serving:
            print("serving until Ctrl-C ...")
            await asyncio.Event().wait()
    finally:
        await server.stop()
    return 0


async def _publish(url: str, ca_path: str | None) -> str | None:
    creds = Credentials(username=DEMO_USER, password=DEMO_PASSWORD)
    csv_path = sample_csv()
    async with DsmapiClient(url, creds, ca_bundle=ca_path) as client:
        try:
            revision = await client.create_dataset(
                {"name": "Building permits (dsmsyncd demo)", "description": "Sample data"}
            )
            print(f"opened revision {revision.seq} on new dataset {revision.fourfour}")
            source = await client.create_upload_source(revision, csv_path.name)
            uploaded = await upload_blob(client, source, LocalFileBlob.open(csv_path))
            sent, chunks = uploaded.bytes_sent, uploaded.chunks
            print(f"uploaded {csv_path.name}: {sent} bytes in {chunks} chunk(s)")
            guessed = await client.wait_for_output_schema(source)
            columns = [
                {
                    "field_name": field,
                    "display_name": display,
                    "position": position,
                    "description": "",
                    "is_primary_key": field == "permit_id",
                    "transform": {"transform_expr": expr},
                }
                for position, (field, display, expr) in enumerate(DEMO_COLUMNS)
            ]
            schema = await client.transform(source, guessed.input_schema_id, columns)
            schema = await client.wait_for_schema_completion(source, schema)
            print(f"transformed: {schema.total_rows} rows, {schema.error_count} with errors")
            job = await client.wait_for_task_set(revision, await client.apply(revision, schema.id))
            if job.status != "successful":
                print(f"apply ended in {job.status}: {json.dumps(job.log)}", file=sys.stderr)
                return None
            rows = await client.read_rows(revision.fourfour, {"$order": "permit_id"})
        except DsmapiError as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return None
    print(f"published {len(rows)} rows; read back over SODA:")
    for row in rows:
        print("  " + json.dumps(row, sort_keys=True))
    where = f"{url}/resource/{revision.fourfour}.json"
    print(f"read them yourself: curl --cacert {ca_path} -u {DEMO_USER}:{DEMO_PASSWORD} {where}")
    return revision.fourfour


def _farewell(keep_serving: bool) -> None:
    if not keep_serving:
        print(
            "the server stops now; `.venv/bin/dsmsyncd demo --keep-serving` keeps it up "
            "so that the URL above answers"
        )
