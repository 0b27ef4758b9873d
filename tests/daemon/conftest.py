"""Fixtures: the real local server in-process, a SQLite state store, and a pipeline harness.

The server is bound before its fixture yields (``start_server`` returns after the
socket accepts), and every wait in these tests is a poll of real server state, never
a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.dsmapi import Credentials, DsmapiClient, RetryPolicy, Revision
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.job_routing import routing_snapshot
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.pipeline.upload import upload_blob
from dsmsyncd.server.main import RunningServer, ServeOptions, start_server
from dsmsyncd.state import Job, JobState, SqliteStateStore, StateStore

ROBOT = ("robot", "robot-pw")
OTHER = ("other", "other-pw")
FAST_RETRY = RetryPolicy(attempts=2, base_delay_s=0.01, max_delay_s=0.05)


@dataclass(frozen=True)
class BytesBlob:
    """An in-memory Blob for seeding datasets."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def identity(self) -> str:
        return f"bytes:{self.name}:{len(self.data)}"

    async def read_range(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]

    async def read_into(self, offset: int, buffer: memoryview) -> None:
        buffer[:] = await self.read_range(offset, len(buffer))


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    options = ServeOptions(
        listen_host="127.0.0.1",
        listen_port=0,
        data_dir=tmp_path / "server",
        users=[ROBOT, OTHER],
        tokens=[],
        tls_cert=None,
        tls_key=None,
        tls_self_signed=False,
    )
    running = await start_server(options)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[DsmapiClient]:
    credentials = Credentials(username=ROBOT[0], password=ROBOT[1])
    async with DsmapiClient(server.url, credentials, retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(tmp_path / "state.db") as s:
        yield s


class Crash(Exception):
    """Stands for kill -9: raised instead of a state write, nothing after it runs."""


class CrashingStore:
    """A store that 'dies' at the first transition ``crash_when`` picks (before writing it)."""

    def __init__(
        self, inner: StateStore, crash_when: Callable[[JobState, Mapping[str, Any]], bool]
    ):
        self._inner = inner
        self._crash_when = crash_when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def transition(self, job_id: int, new_state: JobState, **kw: Any) -> Job:
        if self._crash_when(new_state, kw):
            raise Crash(f"crash before recording {new_state} {sorted(kw)}")
        return await self._inner.transition(job_id, new_state, **kw)


@dataclass
class Harness:
    root: Path
    client: DsmapiClient
    store: StateStore
    server: RunningServer
    metrics: Metrics = field(default_factory=Metrics)
    mappings: list[MappingConfig] = field(default_factory=list)

    @property
    def drop(self) -> Path:
        return self.root / "drop"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    def mapping(self, dataset: str, **kw: Any) -> int:
        """Add a mapping (action update unless told); its index."""
        if "import_config" not in kw:
            kw.setdefault("action", "update")
        self.mappings.append(
            MappingConfig(
                source="drop",
                match="*.csv",
                dataset=dataset,
                archive_dir=self.archive,
                quarantine_dir=self.quarantine,
                **kw,
            )
        )
        return len(self.mappings) - 1

    async def add_job(self, mapping_index: int, name: str, content: bytes) -> Job:
        self.drop.mkdir(parents=True, exist_ok=True)
        path = self.drop / name
        path.write_bytes(content)
        blob = LocalFileBlob.open(path)
        job = await self.store.add_job(
            source="drop",
            relative_path=name,
            identity=blob.identity,
            size=blob.size,
            mtime=datetime.now(UTC),
            dataset=self.mappings[mapping_index].dataset,
            mapping_index=mapping_index,
            routing=routing_snapshot(self.mappings[mapping_index]),
        )
        assert job is not None
        return job

    def context(self, *, client: DsmapiClient | None = None, store: Any = None) -> PipelineContext:
        return PipelineContext(
            client=client or self.client,
            store=store or self.store,
            metrics=self.metrics,
            mappings=self.mappings,
            open_blob=lambda job: LocalFileBlob.open(self.drop / job.relative_path),
            finalizer_for=lambda job: FolderFinalizer(self.drop),
            chunk_limit=asyncio.Semaphore(8),
            retry_base_s=1.0,
            retry_max_s=10.0,
        )

    def pipeline(self, **kw: Any) -> Pipeline:
        return Pipeline(self.context(**kw))

    async def run(self, mapping_index: int, name: str, content: bytes, **kw: Any) -> Job:
        job = await self.add_job(mapping_index, name, content)
        return await self.pipeline().run(job, **kw)

    async def details(self, job: Job) -> dict[str, Any]:
        """Every event's details of the job, merged (later events win)."""
        merged: dict[str, Any] = {}
        for event in await self.store.events(job.id):
            merged.update(event.details)
        return merged


@pytest.fixture
async def harness(
    tmp_path: Path, client: DsmapiClient, store: SqliteStateStore, server: RunningServer
) -> Harness:
    return Harness(tmp_path / "files", client, store, server)


# -- datasets, made through the client as a user would ------------------------------------


async def publish_dataset(
    client: DsmapiClient, csv: bytes | None, *, row_id: str | None = None, name: str = "Rows"
) -> str:
    """A new dataset, published with ``csv`` (or with no data); its fourfour."""
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
