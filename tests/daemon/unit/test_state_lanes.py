"""Lane leases, on both stores: one replica per lane, arrival order, takeover after a
lease ends, fencing of a replica that lost its lane, and the cluster view.

Several replicas exist only on PostgreSQL (a SQLite file has one daemon), so the tests
of two replicas at once take the ``postgres_url`` database directly; everything one
replica does is checked on both stores (``state_backend``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from dsmsyncd.state import JobState, LaneClaim, LaneLost, ReplicaIdentity
from dsmsyncd.state.postgres_lanes import WORK_CHANNEL
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import StoreFactory, postgres_factory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = ReplicaIdentity("r1", lease_timeout_s=30)


class Clock:
    """The stores' clock, moved by the test: leases end without waiting for them."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


async def test_a_lane_is_claimed_run_in_arrival_order_and_released(
    state_backend: StoreFactory,
) -> None:
    clock = Clock()
    async with state_backend.new(clock, replica=LEASE) as store:
        later = await add_job(store, "b.csv", identity="b", mtime=T0 + timedelta(minutes=1))
        first = await add_job(store, "a.csv", identity="a", mtime=T0)
        assert await store.claim_lane("abcd-1234", clock()) == LaneClaim("abcd-1234")
        head = await store.claim_next("abcd-1234", clock())
        assert head is not None
        assert head.id == first.id
        view = await store.cluster()
        assert [(lease.dataset, lease.replica, lease.job_id) for lease in view.leases] == [
            ("abcd-1234", "r1", first.id)
        ]
        assert [replica.name for replica in view.replicas] == ["r1"]
        await store.transition(first.id, JobState.SKIPPED, expect=JobState.DISCOVERED)
        head = await store.claim_next("abcd-1234", clock())
        assert head is not None
        assert head.id == later.id
        # Claiming a lane it holds renews it: no takeover of its own lane.
        assert await store.claim_lane("abcd-1234", clock()) == LaneClaim("abcd-1234")
        await store.release_lane("abcd-1234", finished=True)
        assert (await store.cluster()).leases == ()
        assert await store.orphaned_lanes(clock.advance(3600)) == []


async def test_a_head_not_due_yet_is_not_claimed(state_backend: StoreFactory) -> None:
    clock = Clock()
    async with state_backend.new(clock, replica=LEASE) as store:
        job = await add_job(store, "a.csv", identity="a", mtime=T0)
        await store.transition(
            job.id,
            JobState.FAILED_RETRYABLE,
            expect=JobState.DISCOVERED,
            next_attempt_at=T0 + timedelta(seconds=60),
        )
        await store.claim_lane("abcd-1234", clock())
        assert await store.claim_next("abcd-1234", clock()) is None
        await store.claim_lane("abcd-1234", clock.advance(61))  # renewed, as it would be
        head = await store.claim_next("abcd-1234", clock())
        assert head is not None
        assert head.id == job.id


async def test_a_restarted_daemon_takes_its_earlier_lanes_over_at_once(
    state_backend: StoreFactory,
) -> None:
    """A crash leaves its lease behind; the same replica, restarted, must not wait for it
    to end, and must know to finish the lane's leftovers first (``taken_from``)."""
    clock = Clock()
    crashed = state_backend.new(clock, replica=LEASE)
    await crashed.open()
    await add_job(crashed, "a.csv", identity="a", mtime=T0)
    await crashed.claim_lane("abcd-1234", clock())
    # A crash gives nothing up: forget the store without closing it as a daemon would.
    crashed._replica = None  # type: ignore[attr-defined]
    await crashed.close()
    async with state_backend.new(clock, replica=LEASE) as restarted:
        assert await restarted.orphaned_lanes(clock()) == ["abcd-1234"]
        claim = await restarted.claim_lane("abcd-1234", clock())
        assert claim == LaneClaim("abcd-1234", taken_from="r1")
        assert await restarted.orphaned_lanes(clock()) == []


async def test_a_cancelled_lane_is_left_as_an_orphan_for_the_next_holder(
    state_backend: StoreFactory,
) -> None:
    clock = Clock()
    async with state_backend.new(clock, replica=LEASE) as store:
        await add_job(store, "a.csv", identity="a", mtime=T0)
        await store.claim_lane("abcd-1234", clock())
        await store.release_lane("abcd-1234", finished=False)
        assert await store.orphaned_lanes(clock()) == ["abcd-1234"]
        assert await store.renew_lanes(clock()) == set()
        assert await store.claim_lane("abcd-1234", clock()) == LaneClaim(
            "abcd-1234", taken_from="r1"
        )


async def test_a_reader_holds_no_lanes(state_backend: StoreFactory) -> None:
    async with state_backend.new() as reader:
        with pytest.raises(Exception, match="only a daemon's store"):
            await reader.claim_lane("abcd-1234", T0)
        assert (await reader.cluster()).replicas == ()


# -- several replicas: PostgreSQL ------------------------------------------------------


async def test_a_lane_held_by_a_live_replica_is_not_claimed_until_its_lease_ends(
    postgres_url: str,
) -> None:
    backend = await postgres_factory(postgres_url)
    clock = Clock()
    one, two = ReplicaIdentity("r1", 30), ReplicaIdentity("r2", 30)
    async with backend.new(clock, replica=one) as r1, backend.new(clock, replica=two) as r2:
        job = await add_job(r1, "a.csv", identity="a", mtime=T0)
        assert await r1.claim_lane("abcd-1234", clock()) is not None
        assert await r1.claim_next("abcd-1234", clock()) is not None
        assert await r2.claim_lane("abcd-1234", clock.advance(29)) is None
        assert await r1.renew_lanes(clock()) == {"abcd-1234"}  # renewed: 30 s more
        assert await r2.claim_lane("abcd-1234", clock.advance(29)) is None
        # r1 stops renewing (cut off, paused, killed): its lease ends, r2 takes over.
        clock.advance(2)
        assert await r2.orphaned_lanes(clock()) == ["abcd-1234"]
        claim = await r2.claim_lane("abcd-1234", clock())
        assert claim == LaneClaim("abcd-1234", taken_from="r1")
        head = await r2.claim_next("abcd-1234", clock())
        assert head is not None
        assert head.id == job.id
        # The old holder is fenced: its next step and its next claim are refused.
        with pytest.raises(LaneLost, match="replica r2 holds it now") as caught:
            await r1.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED)
        assert caught.value.job_id == job.id
        with pytest.raises(LaneLost, match="lease on dataset abcd-1234's lane ended"):
            await r1.claim_next("abcd-1234", clock())
        assert await r1.renew_lanes(clock()) == set()
        moved = await r2.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED)
        assert moved.state is JobState.OPENING


async def test_two_replicas_racing_for_one_free_lane_one_wins(postgres_url: str) -> None:
    backend = await postgres_factory(postgres_url)
    clock = Clock()
    stores = [backend.new(clock, replica=ReplicaIdentity(f"r{n}", 30)) for n in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        await add_job(stores[0], "a.csv", identity="a", mtime=T0)
        claims = await asyncio.gather(*(store.claim_lane("abcd-1234", clock()) for store in stores))
        assert sum(claim is not None for claim in claims) == 1, claims
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_a_head_row_another_transaction_holds_is_skipped_not_passed(
    postgres_url: str,
) -> None:
    """``SKIP LOCKED`` by id: a locked head is not claimed this time, and the job behind
    it is never claimed in its place (arrival order holds)."""
    backend = await postgres_factory(postgres_url)
    clock = Clock()
    async with backend.new(clock, replica=LEASE) as store:
        head = await add_job(store, "a.csv", identity="a", mtime=T0)
        await add_job(store, "b.csv", identity="b", mtime=T0 + timedelta(minutes=1))
        await store.claim_lane("abcd-1234", clock())
        conn = await asyncpg.connect(postgres_url, server_settings=backend._settings())
        try:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", head.id)
                assert await store.claim_next("abcd-1234", clock()) is None
        finally:
            await conn.close()
        claimed = await store.claim_next("abcd-1234", clock())
        assert claimed is not None
        assert claimed.id == head.id


async def test_new_work_is_announced_to_listening_replicas(postgres_url: str) -> None:
    backend = await postgres_factory(postgres_url)
    clock = Clock()
    woken = asyncio.Event()
    async with (
        backend.new(clock, replica=ReplicaIdentity("r1", 30)) as r1,
        backend.new(clock, replica=ReplicaIdentity("r2", 30)) as r2,
    ):
        listening = asyncio.create_task(r2.watch_work(woken.set))
        try:
            # Listening has begun once a notification sent now reaches the watcher.
            probe = await asyncpg.connect(postgres_url)
            try:
                while not woken.is_set():
                    await probe.execute("SELECT pg_notify($1, 'probe')", WORK_CHANNEL)
                    with_timeout = asyncio.wait_for(woken.wait(), timeout=0.2)
                    await asyncio.gather(with_timeout, return_exceptions=True)
            finally:
                await probe.close()
            woken.clear()
            await add_job(r1, "a.csv", identity="a", mtime=T0)
            await asyncio.wait_for(woken.wait(), timeout=10)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
