"""The scheduler's gate (active hours): a held-back dataset's file does not run, other
datasets go on (even with one job slot), and the file runs once the gate lets it go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from dsmsyncd.daemon.scheduler import Scheduler
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, ReplicaIdentity, SqliteStateStore
from tests.daemon.unit.test_scheduler import T0, Recorder, _add


@pytest.fixture
async def store() -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(":memory:", replica=ReplicaIdentity("test")) as opened:
        yield opened


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
