"""The state store contract, run against SQLite (a real file) and PostgreSQL (a real
server): dedup, compare-and-set, lane order, restart, tearing, schema versions.

Tests that take ``state_backend`` run once per implementation; those on ``db_path``
are about SQLite itself (its lock file, WAL, the statement trace).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dsmsyncd.state import (
    SCHEMA_VERSION,
    TERMINAL_STATES,
    Job,
    JobState,
    ReplicaIdentity,
    SchemaTooNew,
    SqliteStateStore,
    StaleTransition,
    StateLocked,
    StateStore,
    StateStoreError,
    UnknownJob,
)
from dsmsyncd.state.migrations import ACTIVE_SQL, MIGRATIONS
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import StoreFactory

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class StepClock:
    """Each reading is one second after the last: distinct, ordered timestamps without sleeping."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "dsmsyncd.db"


@pytest.fixture
async def store(state_backend: StoreFactory) -> AsyncIterator[StateStore]:
    async with state_backend.new(clock=StepClock()) as opened:
        yield opened


async def _add(
    store: StateStore,
    path: str = "permits/a.csv",
    *,
    dataset: str = "abcd-1234",
    mtime: datetime = T0,
    source: str = "drop",
    sha256: str | None = None,
) -> Job:
    identity = f"file:/srv/drop/{path}:10:{mtime.timestamp()}"
    return await add_job(
        store,
        path,
        identity=identity,
        mtime=mtime,
        dataset=dataset,
        source=source,
        content_sha256=sha256,
    )


async def _publish(store: StateStore, job: Job) -> Job:
    return await store.transition(job.id, JobState.PUBLISHED, expect=JobState.DISCOVERED)


async def test_add_job_records_discovered_job_and_first_event(store: StateStore) -> None:
    job = await _add(store, sha256="ab" * 32)
    assert job.state is JobState.DISCOVERED
    assert (job.source, job.relative_path, job.dataset, job.size) == (
        "drop",
        "permits/a.csv",
        "abcd-1234",
        10,
    )
    assert job.mtime == T0
    assert job.content_sha256 == "ab" * 32
    assert job.attempts == 0
    assert job.revision_seq is None
    assert job.finished_at is None
    assert not job.terminal
    assert await store.get_job(job.id) == job
    [event] = await store.events(job.id)
    assert (event.state, event.previous_state) == (JobState.DISCOVERED, None)
    assert event.details["path"] == "permits/a.csv"


async def test_add_job_same_source_and_identity_is_deduplicated(store: StateStore) -> None:
    first = await _add(store)
    again = await store.add_job(
        source="drop",
        relative_path=first.relative_path,
        identity=first.identity,
        size=first.size,
        mtime=first.mtime,
        dataset=first.dataset,
        mapping_index=0,
    )
    assert again is None
    assert await store.is_known("drop", first.identity)
    assert not await store.is_known("drop", "file:/srv/drop/other.csv:1:2")
    other_source = await _add(store, source="bucket")
    assert other_source.id != first.id
    assert (await store.counts_by_state())[JobState.DISCOVERED] == 2


async def test_transition_writes_fields_and_appends_event(store: StateStore) -> None:
    job = await _add(store)
    opening = await store.transition(
        job.id, JobState.OPENING, expect=JobState.DISCOVERED, attempts=1, started_at=T0
    )
    uploading = await store.transition(
        job.id,
        JobState.UPLOADING,
        expect=JobState.OPENING,
        revision_seq=3,
        revision_id=201,
        source_id=823,
        details={"chunks": 4},
    )
    assert opening.attempts == 1
    assert opening.started_at == T0
    assert uploading.state is JobState.UPLOADING
    assert (uploading.revision_seq, uploading.revision_id, uploading.source_id) == (3, 201, 823)
    assert uploading.attempts == 1
    assert uploading.updated_at > opening.updated_at > job.updated_at
    assert await store.get_job(job.id) == uploading
    last = (await store.events(job.id))[-1]
    assert (last.state, last.previous_state) == (JobState.UPLOADING, JobState.OPENING)
    assert last.details == {"chunks": 4, "revision_id": 201, "revision_seq": 3, "source_id": 823}


async def test_transition_from_unexpected_state_raises_stale(store: StateStore) -> None:
    job = await _add(store)
    with pytest.raises(StaleTransition, match="expected state in") as caught:
        await store.transition(job.id, JobState.APPLYING, expect=JobState.PROCESSING)
    assert caught.value.actual is JobState.DISCOVERED
    assert await store.get_job(job.id) == job
    assert len(await store.events(job.id)) == 1


async def test_transition_with_set_of_expected_states(store: StateStore) -> None:
    job = await _add(store)
    retry = {JobState.DISCOVERED, JobState.DISCARDED, JobState.FAILED_RETRYABLE}
    moved = await store.transition(job.id, JobState.OPENING, expect=retry)
    assert moved.state is JobState.OPENING
    with pytest.raises(StaleTransition):
        await store.transition(job.id, JobState.OPENING, expect=retry)


async def test_transition_of_unknown_job_raises(store: StateStore) -> None:
    with pytest.raises(UnknownJob):
        await store.transition(404, JobState.OPENING, expect=JobState.DISCOVERED)
    with pytest.raises(UnknownJob):
        await store.get_job(404)


async def test_transition_to_terminal_state_stamps_finished_at(store: StateStore) -> None:
    job = await _add(store)
    done = await store.transition(job.id, JobState.QUARANTINED, expect=JobState.DISCOVERED)
    assert done.terminal
    assert done.finished_at == done.updated_at


async def test_transition_rejects_naive_datetime(store: StateStore) -> None:
    job = await _add(store)
    with pytest.raises(ValueError, match="naive datetime"):
        await store.transition(
            job.id,
            JobState.FAILED_RETRYABLE,
            expect=JobState.DISCOVERED,
            next_attempt_at=datetime(2025, 3, 1, 12, 0),  # naive on purpose
        )
    assert await store.get_job(job.id) == job


async def test_events_record_whole_history_in_order(store: StateStore) -> None:
    job = await _add(store)
    path = [
        JobState.OPENING,
        JobState.UPLOADING,
        JobState.PROCESSING,
        JobState.APPLYING,
        JobState.PUBLISHED,
    ]
    previous = JobState.DISCOVERED
    for state in path:
        await store.transition(job.id, state, expect=previous)
        previous = state
    events = await store.events(job.id)
    assert [e.state for e in events] == [JobState.DISCOVERED, *path]
    assert [e.previous_state for e in events] == [None, JobState.DISCOVERED, *path[:-1]]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert await store.events(404) == []


async def test_next_runnable_orders_by_mtime_then_name_per_dataset(
    store: StateStore,
) -> None:
    later = T0 + timedelta(minutes=5)
    await _add(store, "z-late.csv", mtime=later)
    b = await _add(store, "b.csv", mtime=T0)
    a = await _add(store, "a.csv", mtime=T0)
    other = await _add(store, "0-other.csv", mtime=T0 - timedelta(days=1), dataset="wxyz-9876")
    now = T0 + timedelta(hours=1)
    assert await store.next_runnable("abcd-1234", now) == a
    await _publish(store, a)
    assert await store.next_runnable("abcd-1234", now) == b
    assert await store.next_runnable("wxyz-9876", now) == other
    assert await store.next_runnable("none-0000", now) is None


async def test_next_runnable_head_backing_off_holds_its_lane(store: StateStore) -> None:
    head = await _add(store, "a.csv", mtime=T0)
    await _add(store, "b.csv", mtime=T0 + timedelta(minutes=1))
    retry_at = T0 + timedelta(minutes=10)
    await store.transition(
        head.id,
        JobState.FAILED_RETRYABLE,
        expect=JobState.DISCOVERED,
        error="connection reset",
        next_attempt_at=retry_at,
    )
    assert await store.next_runnable("abcd-1234", retry_at - timedelta(seconds=1)) is None
    assert await store.datasets_with_work(retry_at - timedelta(seconds=1)) == []
    due = await store.next_runnable("abcd-1234", retry_at)
    assert due is not None
    assert (due.id, due.error) == (head.id, "connection reset")
    assert await store.datasets_with_work(retry_at) == ["abcd-1234"]


async def test_datasets_with_work_oldest_head_first(store: StateStore) -> None:
    await _add(store, "new.csv", mtime=T0 + timedelta(hours=1), dataset="newr-0001")
    await _add(store, "old.csv", mtime=T0, dataset="oldr-0001")
    finished = await _add(store, "done.csv", mtime=T0, dataset="done-0001")
    await _publish(store, finished)
    assert await store.datasets_with_work(T0 + timedelta(days=1)) == ["oldr-0001", "newr-0001"]


async def test_unfinished_jobs_survive_restart(state_backend: StoreFactory) -> None:
    async with state_backend.new(clock=StepClock()) as store:
        uploading = await _add(store, "a.csv")
        await store.transition(
            uploading.id, JobState.UPLOADING, expect=JobState.DISCOVERED, revision_seq=7
        )
        applying = await _add(store, "b.csv", dataset="wxyz-9876")
        await store.transition(
            applying.id, JobState.APPLYING, expect=JobState.DISCOVERED, task_set_id=52
        )
        await _publish(store, await _add(store, "c.csv"))
    async with state_backend.new() as reopened:
        unfinished = await reopened.unfinished_jobs()
    assert [(j.relative_path, j.state) for j in unfinished] == [
        ("a.csv", JobState.UPLOADING),
        ("b.csv", JobState.APPLYING),
    ]
    assert unfinished[0].revision_seq == 7
    assert unfinished[1].task_set_id == 52


async def test_find_published_hash_matches_latest_publication_only(
    store: StateStore,
) -> None:
    first = await _publish(store, await _add(store, "a.csv", sha256="a" * 64))
    assert await store.find_published_hash("abcd-1234", "a" * 64) == first
    assert await store.find_published_hash("wxyz-9876", "a" * 64) is None
    pending = await _add(store, "b.csv", sha256="b" * 64)
    assert await store.find_published_hash("abcd-1234", "b" * 64) is None
    await _publish(store, pending)
    # "a" published again after "b" would be a revert, not a duplicate.
    assert await store.find_published_hash("abcd-1234", "a" * 64) is None
    assert (await store.find_published_hash("abcd-1234", "b" * 64)) is not None


async def test_recent_jobs_newest_first_and_by_dataset(store: StateStore) -> None:
    a = await _add(store, "a.csv")
    b = await _add(store, "b.csv", dataset="wxyz-9876")
    a = await store.transition(a.id, JobState.OPENING, expect=JobState.DISCOVERED)
    assert [j.id for j in await store.recent_jobs(10)] == [a.id, b.id]
    assert [j.id for j in await store.recent_jobs(1)] == [a.id]
    assert [j.id for j in await store.recent_jobs(10, dataset="wxyz-9876")] == [b.id]


async def test_counts_by_state_lists_every_state(store: StateStore) -> None:
    await _publish(store, await _add(store, "a.csv"))
    await _add(store, "b.csv")
    counts = await store.counts_by_state()
    assert set(counts) == set(JobState)
    assert counts[JobState.PUBLISHED] == 1
    assert counts[JobState.DISCOVERED] == 1
    assert counts[JobState.OPENING] == 0


async def test_transition_cancelled_mid_write_commits_whole(db_path: Path) -> None:
    loop = asyncio.get_running_loop()
    reached_update = asyncio.Event()
    armed = False

    def trace(sql: str) -> None:  # runs in the database thread
        if armed and sql.startswith("UPDATE jobs"):
            loop.call_soon_threadsafe(reached_update.set)

    store = SqliteStateStore(db_path, clock=StepClock(), trace=trace)
    async with store:
        job = await _add(store)
        armed = True
        task = asyncio.create_task(
            store.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED, attempts=1)
        )
        await reached_update.wait()  # the UPDATE runs; its event and COMMIT are still to come
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        armed = False
        # The next write on the same connection must not commit half of the cancelled one.
        await _add(store, "b.csv")
    async with SqliteStateStore(db_path) as reopened:
        after = await reopened.get_job(job.id)
        events = await reopened.events(job.id)
    # Whole or absent is the invariant; with the shield, a write that had begun is whole.
    assert after.state is events[-1].state
    assert (after.state, after.attempts, len(events)) == (JobState.OPENING, 1, 2)


async def test_transition_cancelled_before_it_runs_leaves_job_untouched(
    store: StateStore,
) -> None:
    job = await _add(store)
    task = asyncio.create_task(
        store.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED)
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.get_job(job.id) == job


async def test_schema_version_recorded_once(state_backend: StoreFactory) -> None:
    async with state_backend.new() as store:
        await store.ping()
    async with state_backend.new() as again:  # reopening does not migrate twice
        await again.ping()
    versions = await state_backend.fetch_ints("SELECT version FROM schema_version")
    assert max(versions) == SCHEMA_VERSION
    assert len(versions) == len(set(versions))


async def test_sqlite_journal_is_wal(db_path: Path) -> None:
    async with SqliteStateStore(db_path) as store:
        await store.ping()
    with sqlite3.connect(db_path) as raw:
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_version")]
        journal = raw.execute("PRAGMA journal_mode").fetchone()[0]
    raw.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert journal == "wal"


async def test_unsynced_transition_commits_with_normal_and_restores_full(db_path: Path) -> None:
    statements: list[str] = []
    async with SqliteStateStore(db_path, trace=statements.append) as store:
        job = await _add(store)
        statements.clear()
        await store.transition(job.id, JobState.OPENING, expect=JobState.DISCOVERED, synced=False)
        unsynced, statements[:] = list(statements), []
        with pytest.raises(StaleTransition):  # refused: rolled back, and FULL again all the same
            await store.transition(
                job.id, JobState.APPLYING, expect=JobState.DISCOVERED, synced=False
            )
        refused, statements[:] = list(statements), []
        await store.transition(job.id, JobState.UPLOADING, expect=JobState.OPENING)
        synced = list(statements)
        await store.ping()

    assert unsynced[0] == "PRAGMA synchronous=NORMAL"
    assert unsynced[-2:] == ["COMMIT", "PRAGMA synchronous=FULL"]
    assert refused[0] == "PRAGMA synchronous=NORMAL"
    assert refused[-2:] == ["ROLLBACK", "PRAGMA synchronous=FULL"]
    assert not any(s.startswith("PRAGMA") for s in synced)
    assert synced[-1] == "COMMIT"
    async with SqliteStateStore(db_path) as again:  # the unsynced commit is in the file
        assert (await again.get_job(job.id)).state is JobState.UPLOADING


async def test_open_refuses_database_from_newer_release(state_backend: StoreFactory) -> None:
    async with state_backend.new() as store:
        await store.ping()
    stamp = "0" if state_backend.backend == "sqlite" else "now()"
    await state_backend.execute(
        f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, {stamp})"
    )
    newer = state_backend.new()
    try:
        with pytest.raises(SchemaTooNew, match="upgrade dsmsyncd"):
            await newer.open()
    finally:
        await newer.close()


async def test_store_refuses_use_when_not_open_and_reopen(state_backend: StoreFactory) -> None:
    store = state_backend.new()
    with pytest.raises(StateStoreError, match="not open"):
        await store.ping()
    async with store:
        await store.ping()
    with pytest.raises(StateStoreError, match="not open"):
        await store.get_job(1)
    with pytest.raises(StateStoreError, match="opened only once"):
        await store.open()


def test_active_filter_matches_terminal_states_and_lane_index() -> None:
    listed = ACTIVE_SQL.partition("(")[2].rstrip(")").replace("'", "").split(", ")
    assert set(listed) == {state.value for state in TERMINAL_STATES}
    # SQLite uses a partial index only when the query repeats its WHERE term.
    lane_index = next(sql for sql in MIGRATIONS[0] if "INDEX jobs_lane" in sql)
    assert " ".join(lane_index.split()).endswith(f"WHERE {ACTIVE_SQL}")


async def test_a_second_exclusive_store_through_a_symlink_is_refused(tmp_path: Path) -> None:
    """Two daemons whose configs reach one database by different paths (a symlink) must
    meet on one lock, or both would run and discard each other's revisions."""
    real = tmp_path / "state.db"
    alias = tmp_path / "alias.db"
    async with SqliteStateStore(str(real), clock=StepClock(), replica=ReplicaIdentity("a")):
        alias.symlink_to(real)
        second = SqliteStateStore(str(alias), clock=StepClock(), replica=ReplicaIdentity("a"))
        try:
            with pytest.raises(StateLocked, match="is in use by another dsmsyncd"):
                await second.open()
        finally:
            await second.close()
