"""Bucket objects through the whole pipeline: moto's S3 server in, the local DSMAPI server out.

Objects are put into a bucket, discovered by ``BucketSource.scan``, recorded as jobs and
run; the rows are read back from the local server. An object that changes or vanishes
during its upload is made to do so at a chosen chunk (a Blob wrapper that acts when the
job is UPLOADING and the upload asks for the second chunk), so the test is deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from dsmsyncd.blob import Blob
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.finalize.bucket import BucketFinalizer
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.server.main import RunningServer
from dsmsyncd.sources.bucket import BucketSource
from dsmsyncd.state import Job, JobState, SqliteStateStore
from tests.daemon.support.blobs import DelegatingBlob
from tests.daemon.support.datasets import all_rows, open_revisions, publish_dataset
from tests.daemon.support.jobs import add_job
from tests.daemon.support.moto_server import MotoServer, new_bucket_name

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

SEED = b"id,name\n1,ann\n2,bob\n"
DAY = datetime.now(UTC)


@pytest.fixture
async def bucket_source(moto: MotoServer, s3: S3Client) -> AsyncIterator[BucketSource]:
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    config = moto.source_config(bucket, "drop/", name="drop", min_age=0)
    async with BucketSource(config, exclude_dirs=["archive", "quarantine"]) as source:
        yield source


class ActAtSecondChunk(DelegatingBlob):
    """Runs ``act`` once, before the upload's second chunk is read."""

    def __init__(self, inner: Blob, act: Callable[[], Awaitable[None]], chunk: int) -> None:
        super().__init__(inner)
        self._act = act
        self._chunk = chunk
        self.acted = False

    async def read_range(self, offset: int, length: int) -> bytes:
        if not self.acted and offset == self._chunk and length <= self._chunk:
            self.acted = True
            await self._act()
        return await self.inner.read_range(offset, length)

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = await self.read_range(offset, len(buffer))


class BucketRun:
    def __init__(
        self,
        source: BucketSource,
        s3: S3Client,
        client: DsmapiClient,
        store: SqliteStateStore,
    ) -> None:
        self.source = source
        self.s3 = s3
        self.client = client
        self.store = store
        self.mappings: list[MappingConfig] = []
        self.wrap: Callable[[Job, Blob], Blob] = lambda job, blob: blob

    def mapping(self, dataset: str, action: str = "update") -> None:
        self.mappings.append(
            MappingConfig(
                source="drop",
                match="*.csv",
                dataset=dataset,
                action=action,  # type: ignore[arg-type]
                archive_dir="archive",  # type: ignore[arg-type]
                quarantine_dir="quarantine",  # type: ignore[arg-type]
            )
        )

    def _open_blob(self, job: Job) -> Blob:
        return self.wrap(job, self.source.open_blob(job.relative_path, job.identity))

    def pipeline(self) -> Pipeline:
        return Pipeline(
            PipelineContext(
                client=self.client,
                store=self.store,
                metrics=Metrics(),
                mappings=self.mappings,
                open_blob=self._open_blob,
                finalizer_for=lambda job: BucketFinalizer(self.source),
                chunk_limit=asyncio.Semaphore(8),
            )
        )

    async def put(self, key: str, body: bytes) -> None:
        await self.s3.put_object(Bucket=self.source.bucket, Key=key, Body=body)

    async def discover(self) -> list[Job]:
        """One poll: every newly stable object becomes a job (as the daemon's accept does)."""
        jobs = []
        for candidate in await self.source.scan():
            job = await add_job(
                self.store,
                candidate.relative_path,
                identity=candidate.identity,
                mtime=candidate.mtime,
                size=candidate.size,
                dataset=self.mappings[0].dataset,
                source=candidate.source,
            )
            jobs.append(job)
        return jobs

    async def run_all(self) -> list[Job]:
        return [await self.pipeline().run(job) for job in await self.discover()]

    async def keys(self) -> list[str]:
        listed = await self.s3.list_objects_v2(Bucket=self.source.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    async def details(self, job: Job) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for event in await self.store.events(job.id):
            merged.update(event.details)
        return merged


@pytest.fixture
def run(
    bucket_source: BucketSource, s3: S3Client, client: DsmapiClient, store: SqliteStateStore
) -> BucketRun:
    return BucketRun(bucket_source, s3, client, store)


async def test_bucket_pipeline_update_publishes_rows_and_archives(
    run: BucketRun, client: DsmapiClient
) -> None:
    ff = await publish_dataset(client, SEED)
    run.mapping(ff)
    await run.put("drop/more.csv", b"id,name\n3,cy\n4,di\n")
    (job,) = await run.run_all()
    assert job.state is JobState.PUBLISHED, job.error
    assert [r["id"] for r in await all_rows(client, ff)] == ["1", "2", "3", "4"]
    assert await run.keys() == [f"archive/{DAY:%Y/%m/%d}/more.csv"]
    assert not await open_revisions(client, ff)


async def test_bucket_pipeline_replace_replaces_rows(run: BucketRun, client: DsmapiClient) -> None:
    ff = await publish_dataset(client, SEED)
    run.mapping(ff, action="replace")
    await run.put("drop/all.csv", b"id,name\n7,gus\n8,hal\n")
    (job,) = await run.run_all()
    assert job.state is JobState.PUBLISHED, job.error
    assert [r["id"] for r in await all_rows(client, ff)] == ["7", "8"]


async def test_bucket_pipeline_overwrite_during_upload_skips_then_new_version_publishes(
    run: BucketRun, client: DsmapiClient, server: RunningServer
) -> None:
    ff = await publish_dataset(client, SEED)
    run.mapping(ff)
    server.state.preferred_chunk_size = 16  # several chunks, sent one at a time
    server.state.preferred_upload_parallelism = 1
    old = b"id,name\n3,cy\n4,di\n5,ed\n"
    new = b"id,name\n6,fi\n7,gus\n"
    await run.put("drop/data.csv", old)

    async def overwrite() -> None:
        await run.put("drop/data.csv", new)

    blobs: list[ActAtSecondChunk] = []

    def wrap(job: Job, blob: Blob) -> Blob:
        blobs.append(ActAtSecondChunk(blob, overwrite, chunk=16))
        return blobs[-1]

    run.wrap = wrap
    (first,) = await run.run_all()
    assert blobs[0].acted
    assert first.state is JobState.SKIPPED
    details = await run.details(first)
    assert details["reason"] == "file_changed"
    assert "overwritten" in details["message"]
    assert details["revision_seq"] is not None  # a revision was open, and is discarded
    assert "overwritten" in (first.error or "")
    assert not await open_revisions(client, ff)
    assert [r["id"] for r in await all_rows(client, ff)] == ["1", "2"]
    assert await run.keys() == ["drop/data.csv"]  # the new version is left for its own job

    run.wrap = lambda job, blob: blob
    (second,) = await run.run_all()
    assert second.identity != first.identity
    assert second.state is JobState.PUBLISHED, second.error
    assert [r["id"] for r in await all_rows(client, ff)] == ["1", "2", "6", "7"]


async def test_bucket_pipeline_delete_during_upload_skips_with_vanished_reason(
    run: BucketRun, client: DsmapiClient, server: RunningServer
) -> None:
    ff = await publish_dataset(client, SEED)
    run.mapping(ff)
    server.state.preferred_chunk_size = 16
    server.state.preferred_upload_parallelism = 1
    await run.put("drop/data.csv", b"id,name\n3,cy\n4,di\n5,ed\n")

    async def delete() -> None:
        await run.s3.delete_object(Bucket=run.source.bucket, Key="drop/data.csv")

    run.wrap = lambda job, blob: ActAtSecondChunk(blob, delete, chunk=16)
    (job,) = await run.run_all()
    assert job.state is JobState.SKIPPED
    details = await run.details(job)
    assert details["reason"] == "file_vanished"
    assert "deleted" in details["message"]
    assert not await open_revisions(client, ff)
    assert [r["id"] for r in await all_rows(client, ff)] == ["1", "2"]
    assert await run.keys() == []
    assert await run.discover() == []
