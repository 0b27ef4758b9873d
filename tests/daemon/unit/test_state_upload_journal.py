"""The state store's upload journal, on SQLite and on PostgreSQL: plan, acknowledged
chunks, restart, and what starting over forgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from dsmsyncd.state import ChunkRecord, StateStore, UploadPlan, UploadProgress
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import StoreFactory

PLAN = UploadPlan(source_id=7, identity="file:/drop/a.csv:10:1", size=10, chunk_size=4)


@pytest.fixture
async def store(state_backend: StoreFactory) -> AsyncIterator[StateStore]:
    async with state_backend.new() as opened:
        yield opened


async def new_job(store: StateStore, name: str = "a.csv") -> int:
    job = await add_job(store, name, identity=name, size=10, mtime=datetime(2025, 3, 1, tzinfo=UTC))
    return job.id


def chunk(seq: int, digest: str = "d") -> ChunkRecord:
    return ChunkRecord(seq=seq, offset=seq * 4, length=min(4, 10 - seq * 4), digest=digest)


async def test_acknowledged_chunks_survive_a_restart_in_seq_order(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new() as store:
        job_id = await new_job(store)
        assert await store.upload_progress(job_id) is None
        await store.begin_upload(job_id, PLAN)
        for seq in (2, 0):  # acknowledged out of order, as parallel chunks are
            await store.record_chunk(job_id, PLAN.source_id, chunk(seq))
    async with state_backend.new() as reopened:
        progress = await reopened.upload_progress(job_id)
    assert progress == UploadProgress(PLAN, (chunk(0), chunk(2)))
    assert progress.acknowledged_bytes == 4 + 2


async def test_a_chunk_for_another_source_is_not_recorded(store: StateStore) -> None:
    job_id = await new_job(store)
    await store.begin_upload(job_id, PLAN)
    await store.record_chunk(job_id, PLAN.source_id + 1, chunk(0))
    await store.record_chunk(job_id, PLAN.source_id, chunk(1))
    progress = await store.upload_progress(job_id)
    assert progress is not None
    assert progress.chunks == (chunk(1),)


async def test_a_chunk_without_a_plan_is_not_recorded(store: StateStore) -> None:
    job_id = await new_job(store)
    await store.record_chunk(job_id, PLAN.source_id, chunk(0))
    assert await store.upload_progress(job_id) is None


async def test_a_resent_chunk_replaces_its_record(store: StateStore) -> None:
    job_id = await new_job(store)
    await store.begin_upload(job_id, PLAN)
    await store.record_chunk(job_id, PLAN.source_id, chunk(0, "old"))
    await store.record_chunk(job_id, PLAN.source_id, chunk(0, "new"))
    progress = await store.upload_progress(job_id)
    assert progress is not None
    assert progress.chunks == (chunk(0, "new"),)


async def test_begin_upload_again_forgets_the_earlier_chunks(store: StateStore) -> None:
    job_id = await new_job(store)
    await store.begin_upload(job_id, PLAN)
    await store.record_chunk(job_id, PLAN.source_id, chunk(0))
    again = UploadPlan(source_id=8, identity=PLAN.identity, size=10, chunk_size=5)
    await store.begin_upload(job_id, again)
    assert await store.upload_progress(job_id) == UploadProgress(again, ())


async def test_forget_upload_drops_plan_and_chunks_of_that_job_only(
    store: StateStore,
) -> None:
    first, second = await new_job(store, "a.csv"), await new_job(store, "b.csv")
    for job_id in (first, second):
        await store.begin_upload(job_id, PLAN)
        await store.record_chunk(job_id, PLAN.source_id, chunk(0))
    await store.forget_upload(first)
    assert await store.upload_progress(first) is None
    await store.begin_upload(first, PLAN)  # no chunk of the forgotten upload comes back
    assert await store.upload_progress(first) == UploadProgress(PLAN, ())
    assert await store.upload_progress(second) == UploadProgress(PLAN, (chunk(0),))
