"""The whole daemon on a bucket: objects put into moto's S3 server end as published rows.

The daemon runs in-process against the real local DSMAPI server and moto's standalone
S3 server, both over HTTP; completion is observed through the daemon's job listener.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest

from dsmsyncd.blob import Blob
from dsmsyncd.config import load_config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.daemon.source_set import Sources
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.sources.bucket import BucketSource, ClientState
from dsmsyncd.state import Job, JobState
from tests.daemon.support.blobs import DelegatingBlob
from tests.daemon.support.config_text import target_state_admin
from tests.daemon.support.datasets import all_rows, open_revisions, publish_dataset
from tests.daemon.support.in_loop import daemon_running
from tests.daemon.support.moto_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    REGION,
    MotoServer,
    new_bucket_name,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

CONFIG = """[[source]]
name = "exports"
url = "s3://{bucket}/drop/"
endpoint_url = "{endpoint}"
region = "{region}"
access_key_id = "{key}"
secret_access_key = "{secret}"
min_age = "0s"
poll_interval = "{poll}"

[[mapping]]
source = "exports"
match = "*.csv"
dataset = "{fourfour}"
action = "update"
on_success = "archive"
archive_dir = "archive/"
quarantine_dir = "quarantine/"
"""


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
        bucket_config(server, moto, tmp_path, bucket, fourfour, "200ms"),
        encoding="utf-8",
    )
    daemon = Daemon(path, load_config(path))
    finished: asyncio.Queue[Job] = asyncio.Queue()
    daemon.add_listener(finished.put_nowait)
    async with daemon_running(daemon):
        await s3.put_object(
            Bucket=bucket, Key="drop/more people.csv", Body=b"id,name\n2,bob\n3,cy\n"
        )
        job = await asyncio.wait_for(finished.get(), 60)
        assert job.state is JobState.PUBLISHED, job.error
        assert job.relative_path == "more people.csv"

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
    path = tmp_path / "dsmsyncd.toml"
    missing = new_bucket_name()  # never created
    path.write_text(
        bucket_config(server, moto, tmp_path, missing, "abcd-1234", "200ms"), encoding="utf-8"
    )
    daemon = Daemon(path, load_config(path))
    async with daemon_running(daemon):
        async with aiohttp.ClientSession() as http, http.get(f"{daemon.admin_url}/readyz") as reply:
            body = await reply.json()
        assert reply.status == 503
        assert "source exports" in body["failing"]
        assert "bucket" in body["failing"]["source exports"].lower()
        metrics = daemon.metrics.exposition()[0].decode()
        assert 'dsmsyncd_source_up{source="exports"} 0.0' in metrics


def bucket_config(
    server: RunningServer, moto: MotoServer, root: Path, bucket: str, fourfour: str, poll: str
) -> str:
    """The daemon's config: one bucket source on moto, one mapping to ``fourfour``."""
    return target_state_admin(server.url, root) + CONFIG.format(
        bucket=bucket,
        endpoint=moto.url,
        region=REGION,
        key=FAKE_KEY_ID,
        secret=FAKE_SECRET,
        fourfour=fourfour,
        poll=poll,
    )


class GatedReads:
    """A seam in the daemon: a job's reads of its object wait at the first one for ``go``.

    The job is then uploading (its revision and upload source exist) and holds the
    object's blob, which reads through its source's S3 client: what a reload must not
    close under it.
    """

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.go = asyncio.Event()

    def daemon_class(self) -> type[Daemon]:
        gate = self

        class GatedDaemon(Daemon):
            def _open_blob(self, job: Job, sources: Sources | None = None) -> Blob:
                return GatedBlob(super()._open_blob(job, sources), gate)

        return GatedDaemon


class GatedBlob(DelegatingBlob):
    def __init__(self, inner: Blob, gate: GatedReads) -> None:
        super().__init__(inner)
        self.gate = gate

    async def read_range(self, offset: int, length: int) -> bytes:
        self.gate.reading.set()
        await self.gate.go.wait()
        return await self.inner.read_range(offset, length)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = await self.read_range(offset, len(buffer))


@pytest.mark.parametrize("poll_after", ["200ms", "300ms"], ids=["unchanged", "changed"])
async def test_reload_while_a_bucket_job_uploads_lets_it_publish(
    server: RunningServer,
    client: DsmapiClient,
    moto: MotoServer,
    s3: S3Client,
    tmp_path: Path,
    poll_after: str,
) -> None:
    """SIGHUP's reload used to close every source's S3 client, the one a running upload
    was reading from included: the upload failed half-way. An unchanged source now keeps
    running; a changed one is replaced and closed after its last job."""
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    fourfour = await publish_dataset(client, b"id,name\n1,ann\n")
    path = tmp_path / "dsmsyncd.toml"

    def write_config(poll: str) -> None:
        text = bucket_config(server, moto, tmp_path, bucket, fourfour, poll)
        # Without the duplicate check, the first read of the object is the upload's.
        path.write_text(text + "skip_duplicates = false\n", encoding="utf-8")

    write_config("200ms")
    gate = GatedReads()
    daemon = gate.daemon_class()(path, load_config(path))
    finished: asyncio.Queue[Job] = asyncio.Queue()
    daemon.add_listener(finished.put_nowait)
    async with daemon_running(daemon):
        try:
            before = daemon._sources["exports"]
            await s3.put_object(Bucket=bucket, Key="drop/first.csv", Body=b"id,name\n2,bob\n3,cy\n")
            await asyncio.wait_for(gate.reading.wait(), 30)
            assert daemon._store is not None
            [uploading] = await daemon._store.recent_jobs(1)
            assert uploading.state is JobState.UPLOADING

            write_config(poll_after)
            await asyncio.wait_for(daemon.apply_config(load_config(path)), 30)
            after = daemon._sources["exports"]
            assert (after is before) == (poll_after == "200ms")
            gate.go.set()
            first = await asyncio.wait_for(finished.get(), 60)
            assert (first.relative_path, first.state) == ("first.csv", JobState.PUBLISHED), (
                first.error
            )

            await daemon._tasks.finish_oneshots(30)  # the replaced source's retirement
            assert isinstance(before, BucketSource)
            assert before.state is (ClientState.OPENED if after is before else ClientState.CLOSED)
            await s3.put_object(Bucket=bucket, Key="drop/second.csv", Body=b"id,name\n4,di\n")
            second = await asyncio.wait_for(finished.get(), 60)
            assert (second.relative_path, second.state) == ("second.csv", JobState.PUBLISHED)
        finally:
            gate.go.set()

    rows = await all_rows(client, fourfour)
    assert [r["name"] for r in rows] == ["ann", "bob", "cy", "di"]
    assert await open_revisions(client, fourfour) == []
    listing = await s3.list_objects_v2(Bucket=bucket)
    keys = sorted(item["Key"] for item in listing.get("Contents", []))
    assert [key.rsplit("/", 1)[1] for key in keys] == ["first.csv", "second.csv"]
    assert all(key.startswith("archive/") for key in keys)
