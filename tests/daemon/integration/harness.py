"""A pipeline harness on the real local server, and a store that "crashes" on cue.

``Harness`` holds one test's folders and mappings and builds the ``Pipeline`` the
daemon would build; ``CrashingStore`` stands for kill -9 between two steps. The
``harness`` fixture is in this folder's ``conftest.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from dsmsyncd.blob import LocalFileBlob
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.finalize.folder import FolderFinalizer
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.job_routing import routing_snapshot
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.server.main import RunningServer
from dsmsyncd.sources.base import file_identity
from dsmsyncd.state import Job, JobState, StateStore
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.folders import Folders, with_default_action
from tests.daemon.support.jobs import add_job

SEED = b"id,name\n1,ann\n2,bob\n"
MORE = b"id,name\n3,cy\n4,di\n"

CrashWhen = Callable[[JobState, Mapping[str, Any]], bool]


class Crash(Exception):
    """Stands for kill -9: raised instead of a state write, nothing after it runs."""


class CrashingStore:
    """A store that 'dies' at the first transition ``crash_when`` picks (before writing it)."""

    def __init__(self, inner: StateStore, crash_when: CrashWhen) -> None:
        self._inner = inner
        self._crash_when = crash_when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def transition(self, job_id: int, new_state: JobState, **kw: Any) -> Job:
        if self._crash_when(new_state, kw):
            raise Crash(f"crash before recording {new_state} {sorted(kw)}")
        return await self._inner.transition(job_id, new_state, **kw)


@dataclass
class Harness(Folders):
    client: DsmapiClient
    store: StateStore
    server: RunningServer
    metrics: Metrics = field(default_factory=Metrics)
    mappings: list[MappingConfig] = field(default_factory=list)

    def mapping(self, dataset: str, **kw: Any) -> int:
        """Add a mapping (action update unless told); its index."""
        self.mappings.append(
            MappingConfig(
                source="drop",
                match="*.csv",
                dataset=dataset,
                archive_dir=self.archive,
                quarantine_dir=self.quarantine,
                **with_default_action(kw),
            )
        )
        return len(self.mappings) - 1

    async def add_job(self, mapping_index: int, name: str, content: bytes) -> Job:
        self.drop.mkdir(parents=True, exist_ok=True)
        path = self.drop / name
        path.write_bytes(content)
        blob = LocalFileBlob.open(path)
        mapping = self.mappings[mapping_index]
        return await add_job(
            self.store,
            name,
            identity=blob.identity,
            size=blob.size,
            mtime=datetime.now(UTC),
            dataset=mapping.dataset,
            mapping_index=mapping_index,
            routing=routing_snapshot(mapping),
        )

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
            open_beside=self.open_beside,
        )

    def open_beside(self, job: Job, relative_path: str) -> tuple[LocalFileBlob, str]:
        """A file beside a job's, and the identity discovery records it under."""
        blob = LocalFileBlob.open(self.drop / relative_path)
        return blob, file_identity(relative_path, blob.size, blob.mtime_ns)

    def pipeline(self, **kw: Any) -> Pipeline:
        return Pipeline(self.context(**kw))

    async def run(self, mapping_index: int, name: str, content: bytes, **kw: Any) -> Job:
        job = await self.add_job(mapping_index, name, content)
        return await self.pipeline().run(job, **kw)

    async def seeded_job(self) -> tuple[str, Job]:
        """A dataset published with SEED and mapped (update); a job that adds MORE to it."""
        fourfour = await publish_dataset(self.client, SEED)
        return fourfour, await self.add_job(self.mapping(fourfour), "more.csv", MORE)

    async def crash(self, job: Job, crash_when: CrashWhen) -> Job:
        """Run ``job`` until the store "dies" where ``crash_when`` says; the job as left."""
        with pytest.raises(Crash):
            await self.pipeline(store=CrashingStore(self.store, crash_when)).run(job)
        return await self.store.get_job(job.id)

    async def resume(self, left: Job) -> Job:
        """Run ``left`` again, as the daemon does after a restart: it must publish."""
        done = await self.pipeline().run(left)
        assert done.state is JobState.PUBLISHED, done.error
        return done

    async def details(self, job: Job) -> dict[str, Any]:
        """Every event's details of the job, merged (later events win)."""
        merged: dict[str, Any] = {}
        for event in await self.store.events(job.id):
            merged.update(event.details)
        return merged
