"""Dataset lanes over a real SQLite state store: order, one job per dataset, the job limit,
and the gate (active hours) that holds a dataset's file back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from dsmsyncd.daemon.scheduler import Scheduler
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, JobState, ReplicaIdentity, SqliteStateStore, StateStore
from tests.daemon.support.jobs import add_job

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def store() -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(":memory:", replica=ReplicaIdentity("test")) as opened:
        yield opened


async def _add(store: StateStore, dataset: str, name: str, minute: int) -> Job:
    mtime = T0 + timedelta(minutes=minute)
    return await add_job(store, name, identity=f"file:{name}", size=1, mtime=mtime, dataset=dataset)


class Recorder:
    """A job runner that publishes at once, recording order and overlap per dataset."""

    def __init__(self, store: StateStore, expected: int) -> None:
        self.store = store
        self.order: list[str] = []
        self.running: dict[str, int] = {}
        self.max_running_per_dataset = 0
        self.max_running = 0
        self.expected = expected
        self.done = asyncio.Event()

    async def __call__(self, job: Job) -> Job:
        self.running[job.dataset] = self.running.get(job.dataset, 0) + 1
        self.max_running_per_dataset = max(self.max_running_per_dataset, self.running[job.dataset])
        self.max_running = max(self.max_running, sum(self.running.values()))
        await asyncio.sleep(0)  # let other lanes interleave, as real jobs do
        finished = await self.store.transition(
            job.id, JobState.PUBLISHED, expect=JobState.DISCOVERED
        )
        self.order.append(job.relative_path)
        self.running[job.dataset] -= 1
        if len(self.order) == self.expected:
            self.done.set()
        return finished


async def run_until_done(
    store: SqliteStateStore, recorder: Recorder, max_concurrent_jobs: int
) -> Scheduler:
    """A scheduler over ``store`` running jobs with ``recorder`` until it has seen them all."""
    scheduler = Scheduler(store, recorder, Metrics(), max_concurrent_jobs=max_concurrent_jobs)
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(recorder.done.wait(), 10)
    stop.set()
    await runner
    return scheduler


async def test_scheduler_runs_each_dataset_in_arrival_order_one_at_a_time(
    store: SqliteStateStore,
) -> None:
    await _add(store, "aaaa-0001", "a-late.csv", 3)
    await _add(store, "aaaa-0001", "a-early.csv", 1)
    await _add(store, "bbbb-0002", "b-1.csv", 2)
    await _add(store, "aaaa-0001", "a-mid-2.csv", 2)
    await _add(store, "aaaa-0001", "a-mid-1.csv", 2)  # same mtime: by name
    recorder = Recorder(store, expected=5)
    scheduler = await run_until_done(store, recorder, max_concurrent_jobs=4)
    a_jobs = [name for name in recorder.order if name.startswith("a-")]
    assert a_jobs == ["a-early.csv", "a-mid-1.csv", "a-mid-2.csv", "a-late.csv"]
    assert recorder.max_running_per_dataset == 1
    assert await scheduler.drain(1.0)


async def test_scheduler_never_runs_more_datasets_than_the_limit(store: SqliteStateStore) -> None:
    for n in range(6):
        await _add(store, f"dset-{n:04d}", f"f{n}.csv", n)
    recorder = Recorder(store, expected=6)
    await run_until_done(store, recorder, max_concurrent_jobs=2)
    assert recorder.max_running <= 2
    assert sorted(recorder.order) == [f"f{n}.csv" for n in range(6)]


async def test_scheduler_pauses_a_lane_that_crashed(store: SqliteStateStore) -> None:
    await _add(store, "cccc-0003", "boom.csv", 0)
    calls: list[int] = []
    crashed = asyncio.Event()

    async def crash(job: Job) -> Job:
        calls.append(job.id)
        crashed.set()
        raise RuntimeError("a bug in a job")

    scheduler = Scheduler(store, crash, Metrics(), max_concurrent_jobs=1)
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(crashed.wait(), 10)
    for _ in range(20):  # many scheduling rounds: the paused lane must not spin
        scheduler.wake()
        await asyncio.sleep(0)
    stop.set()
    await runner
    assert calls == [calls[0]]
    problems = scheduler.problems()
    assert list(problems) == ["lane cccc-0003"]
    assert "crashed 1 time(s)" in problems["lane cccc-0003"]
    assert "RuntimeError('a bug in a job')" in problems["lane cccc-0003"]


async def test_scheduler_leaves_held_jobs_out_of_the_lane(store: SqliteStateStore) -> None:
    held = await _add(store, "dddd-0004", "held.csv", 0)
    await store.transition(held.id, JobState.HELD, expect=JobState.DISCOVERED)
    await _add(store, "dddd-0004", "next.csv", 1)
    recorder = Recorder(store, expected=1)
    await run_until_done(store, recorder, max_concurrent_jobs=1)
    assert recorder.order == ["next.csv"]
    assert (await store.get_job(held.id)).state is JobState.HELD


async def test_a_gated_dataset_waits_without_a_slot_and_runs_when_let_go(
    store: SqliteStateStore,
) -> None:
    await _add(store, "aaaa-0001", "night.csv", 1)
    await _add(store, "bbbb-0002", "any-time.csv", 2)
    closed = {"aaaa-0001"}
    asked: list[str] = []

    def gate(job: Job) -> datetime | None:
        asked.append(job.relative_path)
        return T0 + timedelta(hours=19) if job.dataset in closed else None

    recorder = Recorder(store, expected=1)
    # One job slot: the waiting dataset must not keep it.
    scheduler = Scheduler(store, recorder, Metrics(), max_concurrent_jobs=1, gate=gate)
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(recorder.done.wait(), 10)
        assert recorder.order == ["any-time.csv"]
        assert "night.csv" in asked

        recorder.expected, recorder.done = 2, asyncio.Event()
        closed.clear()  # the window opens
        scheduler.wake()
        await asyncio.wait_for(recorder.done.wait(), 10)
        assert recorder.order == ["any-time.csv", "night.csv"]
    finally:
        stop.set()
        await runner
