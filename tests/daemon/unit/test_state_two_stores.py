"""Two stores on one database at once, as two daemons or replicas would hold them:
the replica lock, compare-and-set and discovery's dedup across connections, on SQLite
and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import pytest

from dsmsyncd.state import (
    Job,
    JobState,
    ReplicaIdentity,
    ReplicaNameTaken,
    StaleTransition,
    StateLocked,
    StateStoreError,
)
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import StoreFactory

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_a_second_daemon_under_the_same_replica_name_is_refused(
    state_backend: StoreFactory,
) -> None:
    """Two live daemons under one name would each take the other's leases for their own;
    on SQLite any second daemon is refused, since one file has one writer."""
    async with state_backend.new(replica=ReplicaIdentity("r1")):
        second = state_backend.new(replica=ReplicaIdentity("r1"))
        try:
            with pytest.raises(StateStoreError) as caught:
                await second.open()
        finally:
            await second.close()
        async with state_backend.new() as reader:  # status does not take the lock
            await reader.ping()
    if state_backend.backend == "postgres":
        assert isinstance(caught.value, ReplicaNameTaken)
        assert "replica name 'r1' is in use by a live dsmsyncd" in str(caught.value)
        assert f"pid {os.getpid()} on" in str(caught.value)  # the holder's application_name
    else:
        assert isinstance(caught.value, StateLocked)
        assert "is in use by another dsmsyncd" in str(caught.value)
    async with state_backend.new(replica=ReplicaIdentity("r1")) as after:  # released on close
        await after.ping()


async def test_replicas_under_different_names_share_postgres_but_not_sqlite(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new(replica=ReplicaIdentity("r1")):
        second = state_backend.new(replica=ReplicaIdentity("r2"))
        try:
            if state_backend.backend == "postgres":
                await second.open()
                await second.ping()
            else:
                with pytest.raises(StateLocked, match="is in use by another dsmsyncd"):
                    await second.open()
        finally:
            await second.close()


async def test_concurrent_transitions_from_two_stores_one_wins(
    state_backend: StoreFactory,
) -> None:
    """Compare-and-set across processes (two stores, two connections): exactly one moves
    the job, the other is told so and must not act."""
    async with state_backend.new() as first, state_backend.new() as second:
        job = await add_job(first, "a.csv", identity="file:a.csv:10:1", mtime=T0)
        outcomes = await asyncio.gather(
            *(
                store.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED)
                for store in (first, second, first, second)
            ),
            return_exceptions=True,
        )
        moved = [o for o in outcomes if isinstance(o, Job)]
        stale = [o for o in outcomes if isinstance(o, StaleTransition)]
        assert (len(moved), len(stale)) == (1, 3), outcomes
        assert all(s.actual is JobState.OPENING for s in stale)
        assert len(await second.events(job.id)) == 2


async def test_concurrent_discovery_from_two_stores_records_one_job(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new() as first, state_backend.new() as second:
        added = await asyncio.gather(
            *(
                store.add_job(
                    source="drop",
                    relative_path="a.csv",
                    identity="file:a.csv:10:1",
                    size=10,
                    mtime=T0,
                    dataset="abcd-1234",
                    mapping_index=0,
                )
                for store in (first, second, first, second)
            )
        )
        assert len([job for job in added if job is not None]) == 1
        assert (await first.counts_by_state())[JobState.DISCOVERED] == 1
