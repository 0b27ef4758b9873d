"""A staged job in its lane, on both stores: it blocks the lane without being runnable,
unless the job behind it supersedes it; ``dsmsyncd apply`` holds the job it applies.

The three ways a store answers "may this lane run" (``next_runnable``, ``claim_next``,
``datasets_with_work``) must agree, or a lane would spin or stall.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsmsyncd.state import Job, JobState, ReplicaIdentity, StateStore
from tests.daemon.support.jobs import add_job
from tests.daemon.support.state_backends import StoreFactory

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DATASET = "abcd-1234"


def clock() -> datetime:
    return T0


async def staged_head(store: StateStore) -> Job:
    job = await add_job(store, "a.csv", identity="a", mtime=T0, routing={"on_staged": "wait"})
    for state in (JobState.OPENING, JobState.UPLOADING, JobState.PROCESSING):
        job = await store.transition(job.id, state, expect=job.state)
    return await store.transition(job.id, JobState.STAGED, expect=job.state, revision_seq=3)


async def lane_answers(store: StateStore, now: datetime) -> tuple[int | None, bool, int | None]:
    """(next_runnable's id, whether datasets_with_work lists the lane, claim_next's id)."""
    runnable = await store.next_runnable(DATASET, now)
    with_work = DATASET in await store.datasets_with_work(now)
    assert await store.claim_lane(DATASET, now) is not None
    claimed = await store.claim_next(DATASET, now)
    await store.release_lane(DATASET, finished=True)
    return (
        None if runnable is None else runnable.id,
        with_work,
        None if claimed is None else claimed.id,
    )


async def test_a_staged_head_blocks_its_lane_and_a_waiting_job_behind_it(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new(clock, replica=ReplicaIdentity("r1")) as store:
        staged = await staged_head(store)
        assert await lane_answers(store, T0) == (None, False, None)
        await add_job(
            store, "b.csv", identity="b", mtime=T0 + timedelta(1), routing={"on_staged": "wait"}
        )
        assert await lane_answers(store, T0) == (None, False, None)
        lane = await store.unfinished_jobs()
        assert [job.state for job in lane] == [JobState.STAGED, JobState.DISCOVERED]
        assert lane[0].id == staged.id


async def test_a_job_that_supersedes_makes_the_staged_head_runnable(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new(clock, replica=ReplicaIdentity("r1")) as store:
        staged = await staged_head(store)
        await add_job(
            store,
            "b.csv",
            identity="b",
            mtime=T0 + timedelta(1),
            routing={"on_staged": "supersede"},
        )
        assert await lane_answers(store, T0) == (staged.id, True, staged.id)


async def test_a_job_held_by_apply_is_not_runnable_until_its_hold_ends(
    state_backend: StoreFactory,
) -> None:
    async with state_backend.new(clock, replica=ReplicaIdentity("r1")) as store:
        staged = await staged_head(store)
        until = T0 + timedelta(minutes=5)
        await store.transition(
            staged.id, JobState.APPLYING, expect=JobState.STAGED, next_attempt_at=until
        )
        assert await lane_answers(store, T0) == (None, False, None)
        # The apply's process died: once its hold ends, the daemon finishes the apply.
        assert await lane_answers(store, until) == (staged.id, True, staged.id)
