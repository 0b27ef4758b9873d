"""The whole daemon on a bucket: objects put into moto's S3 server end as published rows.

The daemon runs in-process against the real local DSMAPI server and moto's standalone
S3 server, both over HTTP; completion is observed through the daemon's job listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.daemon import Daemon
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import Job, JobState
from tests import moto_server
from tests.moto_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    REGION,
    MotoServer,
    new_bucket_name,
    s3_client,
)

from .conftest import ROBOT, all_rows, open_revisions, publish_dataset

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

moto = moto_server.moto

CONFIG = """
[target]
url = "{url}"
username = "{user}"
password = "{password}"

[state]
url = "sqlite:///{root}/state.db"

[admin]
listen = "127.0.0.1:0"

[[source]]
name = "exports"
url = "s3://{bucket}/drop/"
endpoint_url = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
min_age = "0s"
poll_interval = "200ms"

[[mapping]]
source = "exports"
match = "*.csv"
dataset = "{fourfour}"
action = "update"
on_success = "archive"
archive_dir = "archive/"
quarantine_dir = "quarantine/"
"""


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[S3Client]:
    async with s3_client(moto) as client:
        yield client


async def test_daemon_publishes_bucket_objects_and_archives_them(
    server: RunningServer,
    client: DsmapiClient,
    moto: MotoServer,
    s3: S3Client,
    tmp_path: Path,
) -> None:
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    fourfour = await publish_dataset(client, b"id,name\n1,ann\n")
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(
        CONFIG.format(
            url=server.url,
            user=ROBOT[0],
            password=ROBOT[1],
            root=tmp_path,
            bucket=bucket,
            endpoint=moto.url,
            region=REGION,
            key=FAKE_KEY_ID,
            secret=FAKE_SECRET,
            fourfour=fourfour,
        ),
        encoding="utf-8",
    )
    daemon = Daemon(path, load_config(path))
    finished: asyncio.Queue[Job] = asyncio.Queue()
    daemon.add_listener(finished.put_nowait)
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 20)
        await s3.put_object(
            Bucket=bucket, Key="drop/more people.csv", Body=b"id,name\n2,bob\n3,cy\n"
        )
        job = await asyncio.wait_for(finished.get(), 60)
        assert job.state is JobState.PUBLISHED, job.error
        assert job.relative_path == "more people.csv"
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(runner, 30) == 0

    rows = await all_rows(client, fourfour)
    assert [r["name"] for r in rows] == ["ann", "bob", "cy"]
    assert await open_revisions(client, fourfour) == []
    listing = await s3.list_objects_v2(Bucket=bucket)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    assert not any(key.startswith("drop/") for key in keys)  # moved, not copied
    assert any(key.startswith("archive/") and key.endswith("more people.csv") for key in keys)


async def test_daemon_readyz_names_a_missing_bucket(
    server: RunningServer, moto: MotoServer, tmp_path: Path
) -> None:
    import aiohttp

    path = tmp_path / "dsmsyncd.toml"
    path.write_text(
        CONFIG.format(
            url=server.url,
            user=ROBOT[0],
            password=ROBOT[1],
            root=tmp_path,
            bucket=new_bucket_name(),  # never created
            endpoint=moto.url,
            region=REGION,
            key=FAKE_KEY_ID,
            secret=FAKE_SECRET,
            fourfour="abcd-1234",
        ),
        encoding="utf-8",
    )
    daemon = Daemon(path, load_config(path))
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 20)
        async with aiohttp.ClientSession() as http, http.get(f"{daemon.admin_url}/readyz") as reply:
            body = await reply.json()
        assert reply.status == 503
        assert "source exports" in body["failing"]
        assert "bucket" in body["failing"]["source exports"].lower()
        metrics = daemon.metrics.exposition()[0].decode()
        assert 'dsmsyncd_source_up{source="exports"} 0.0' in metrics
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(runner, 30) == 0
