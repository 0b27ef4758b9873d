"""Lease renewals beside lanes that are still claiming: a renewal never "loses" them.

A renewal names the leases it kept; a lane whose claim had not committed when the
renewal began is not among them, and is not lost. Cancelling it as lost used to do
harm when its claim committed anyway (store writes are shielded): the lease stayed
under this replica's name, renewed by every renewal, with no lane running it, so no
other replica could take the dataset until this one happened to claim it again (seen
in ``tests/daemon/e2e/test_daemon_replicas.py``: a dead replica's lane resumed 14 s
after its lease ended instead of at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from dsmsyncd.daemon.scheduler import Scheduler
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import (
    Job,
    LaneClaim,
    ReplicaIdentity,
    SqliteStateStore,
    StateStore,
    utc_now,
)
from tests.daemon.support.state_backends import postgres_factory
from tests.daemon.unit.test_scheduler import Recorder, _add


class SlowClaims(SqliteStateStore):
    """A store whose lane claims wait for ``go`` before they run; renewals are counted."""

    def __init__(self) -> None:
        super().__init__(":memory:", replica=ReplicaIdentity("test", lease_timeout_s=30))
        self.claiming = asyncio.Event()
        self.renewed = asyncio.Event()
        self.go = asyncio.Event()
        self.cancelled_claims = 0

    async def claim_lane(self, dataset: str, now: datetime) -> LaneClaim | None:
        self.claiming.set()
        try:
            await self.go.wait()
        except asyncio.CancelledError:
            self.cancelled_claims += 1
            raise
        return await super().claim_lane(dataset, now)

    async def renew_lanes(self, now: datetime) -> set[str]:
        kept = await super().renew_lanes(now)
        self.renewed.set()
        return kept


@pytest.fixture
async def store() -> AsyncIterator[SlowClaims]:
    async with SlowClaims() as opened:
        yield opened


async def test_renewal_during_a_claim_does_not_stop_the_lane(store: SlowClaims) -> None:
    await _add(store, "aaaa-0001", "a.csv", 0)
    recorder = Recorder(store, expected=1)
    scheduler = Scheduler(store, recorder, Metrics(), max_concurrent_jobs=1)
    stop = asyncio.Event()
    runner = asyncio.create_task(scheduler.run(stop))
    await asyncio.wait_for(store.claiming.wait(), 10)
    # The first renewal runs at once, while the lane is claiming: it kept nothing.
    leases = asyncio.create_task(scheduler.keep_leases(stop))
    await asyncio.wait_for(store.renewed.wait(), 10)  # and keep_leases looked at it
    store.go.set()
    await asyncio.wait_for(recorder.done.wait(), 10)
    stop.set()
    await asyncio.gather(runner, leases)

    assert store.cancelled_claims == 0
    assert recorder.order == ["a.csv"]
    assert await scheduler.drain(1.0)
    assert (await store.cluster()).leases == ()


async def test_a_full_replica_gives_way_to_a_dead_replicas_lane_after_one_job(
    postgres_url: str,
) -> None:
    """With every slot busy, a dead replica's lane waits one job, not a whole queue."""
    backend = await postgres_factory(postgres_url)
    async with (
        backend.new(replica=ReplicaIdentity("dead", 30)) as dead,
        backend.new(replica=ReplicaIdentity("live", 30)) as live,
    ):
        for minute, name in enumerate(["b1.csv", "b2.csv", "b3.csv"]):
            await _add(live, "busy-0001", name, minute)
        await _add(live, "dead-0002", "d1.csv", 0)
        assert await dead.claim_lane("dead-0002", utc_now()) is not None
        assert await dead.claim_next("dead-0002", utc_now()) is not None

        first_started, go = asyncio.Event(), asyncio.Event()
        recorder = Recorder(live, expected=4)

        async def run_job(job: Job) -> Job:
            if job.relative_path == "b1.csv":
                first_started.set()
                await go.wait()
            return await recorder(job)

        scheduler = Scheduler(live, run_job, Metrics(), max_concurrent_jobs=1)
        stop = asyncio.Event()
        runner = asyncio.create_task(scheduler.run(stop))
        await asyncio.wait_for(first_started.wait(), 10)
        # "dead" dies in its job: its lease ends (as it would after 30 s unrenewed).
        await backend.execute("UPDATE lane_leases SET expires_at = now() WHERE replica = 'dead'")
        go.set()
        await asyncio.wait_for(recorder.done.wait(), 10)
        stop.set()
        await runner

    assert recorder.order == ["b1.csv", "d1.csv", "b2.csv", "b3.csv"]


class CountedClaims:
    """Counts a store's lane claims, and which were refused."""

    def __init__(self, store: StateStore) -> None:
        self.refused = asyncio.Event()
        self.claims = 0
        claim_lane = store.claim_lane

        async def counted(dataset: str, now: datetime) -> LaneClaim | None:
            self.claims += 1
            claim = await claim_lane(dataset, now)
            if claim is None:
                self.refused.set()
            return claim

        store.claim_lane = counted  # type: ignore[method-assign]


async def test_a_lane_held_by_another_replica_is_not_claimed_again_until_woken(
    postgres_url: str,
) -> None:
    """A refused claim used to wake the scheduler at once, which claimed again, was
    refused again…: thousands of transactions a second between replicas."""
    backend = await postgres_factory(postgres_url)
    async with (
        backend.new(replica=ReplicaIdentity("other", 30)) as other,
        backend.new(replica=ReplicaIdentity("live", 30)) as live,
    ):
        await _add(live, "held-0001", "h1.csv", 0)
        assert await other.claim_lane("held-0001", utc_now()) is not None
        counted = CountedClaims(live)
        recorder = Recorder(live, expected=1)
        scheduler = Scheduler(live, recorder, Metrics(), max_concurrent_jobs=2, idle_recheck_s=60)
        stop = asyncio.Event()
        runner = asyncio.create_task(scheduler.run(stop))
        await asyncio.wait_for(counted.refused.wait(), 10)
        for _ in range(20):  # round trips to the database, in which a spin would claim
            await other.cluster()
        assert counted.claims == 1
        await other.release_lane("held-0001", finished=True)
        scheduler.wake()  # as the release's notification does
        await asyncio.wait_for(recorder.done.wait(), 10)
        stop.set()
        await runner

    assert recorder.order == ["h1.csv"]
