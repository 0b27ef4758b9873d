"""Lanes shared by two replicas' schedulers on one PostgreSQL database: a lane runs on
one replica only, a lost lease stops its job, and a taken-over lane's leftovers are
finished before its next job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from dsmsyncd.daemon.scheduler import Scheduler
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, JobState, ReplicaIdentity, StateStore
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import postgres_factory

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[StateStore, StateStore, Clock]]:
    backend = await postgres_factory(postgres_url)
    clock = Clock()
    async with (
        backend.new(clock, replica=ReplicaIdentity("r1", 30)) as r1,
        backend.new(clock, replica=ReplicaIdentity("r2", 30)) as r2,
    ):
        yield r1, r2, clock


async def test_a_replica_whose_lease_was_taken_stops_its_job(
    replicas: tuple[StateStore, StateStore, Clock],
) -> None:
    r1, r2, clock = replicas
    job = await add_job(r1, "a.csv", identity="a", mtime=T0)
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(running: Job) -> Job:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return running

    metrics = Metrics()
    scheduler = Scheduler(r1, hang, metrics, max_concurrent_jobs=1, clock=clock)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(started.wait(), 10)
        # r1 is cut off past its lease: r2 takes the lane; r1's next renewal finds it gone.
        clock.now += timedelta(seconds=31)
        assert (await r2.claim_lane(job.dataset, clock())) is not None
        keeper = asyncio.create_task(scheduler.keep_leases(stop))
        await asyncio.wait_for(cancelled.wait(), 10)
        assert metrics.lane_losses.labels("r1")._value.get() == 1
        stop.set()
        await asyncio.wait_for(keeper, 10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await scheduler.drain(5)
    # The lease stays r2's: r1's giving up after the loss did not touch it.
    leases = (await r2.cluster()).leases
    assert [(lease.dataset, lease.replica) for lease in leases] == [(job.dataset, "r2")]


async def test_a_lane_held_by_another_replica_is_not_run_here(
    replicas: tuple[StateStore, StateStore, Clock],
) -> None:
    r1, r2, clock = replicas
    await add_job(r1, "a.csv", identity="a", mtime=T0)
    await add_job(r1, "b.csv", identity="b", mtime=T0, dataset="bbbb-2222")
    assert await r2.claim_lane("abcd-1234", clock()) is not None
    ran: list[str] = []
    other_done = asyncio.Event()

    async def publish(job: Job) -> Job:
        ran.append(job.dataset)
        other_done.set()
        return await r1.transition(job.id, JobState.PUBLISHED, expect=JobState.DISCOVERED)

    scheduler = Scheduler(r1, publish, Metrics(), max_concurrent_jobs=4, clock=clock)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(other_done.wait(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await scheduler.drain(5)
    assert ran == ["bbbb-2222"]


async def test_a_taken_over_lane_finishes_its_leftovers_before_its_next_job(
    replicas: tuple[StateStore, StateStore, Clock],
) -> None:
    r1, r2, clock = replicas
    job = await add_job(r1, "a.csv", identity="a", mtime=T0)
    assert await r1.claim_lane(job.dataset, clock()) is not None  # r1 then dies silently
    clock.now += timedelta(seconds=31)
    order: list[str] = []
    done = asyncio.Event()

    async def sweep(dataset: str) -> None:
        order.append(f"sweep {dataset}")

    async def publish(running: Job) -> Job:
        order.append(f"run {running.relative_path}")
        done.set()
        return await r2.transition(running.id, JobState.PUBLISHED, expect=JobState.DISCOVERED)

    metrics = Metrics()
    scheduler = Scheduler(r2, publish, metrics, max_concurrent_jobs=1, sweep=sweep, clock=clock)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        await scheduler.drain(5)
    assert order == [f"sweep {job.dataset}", "run a.csv"]
    assert metrics.lane_takeovers.labels("r2")._value.get() == 1
