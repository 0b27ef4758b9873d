"""Jobs as the tests need them: recorded in a store, or handed to a finalizer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dsmsyncd.state import Job, JobState, StateStore

# What a published job's row holds no value for here: the finalizers never read them.
NOT_YET = [
    "content_sha256",
    "revision_seq",
    "revision_id",
    "source_id",
    "output_schema_id",
    "task_set_id",
]
NOT_YET += ["error", "started_at", "finished_at", "next_attempt_at"]


def finished_job(source: str, relative_path: str, identity: str, size: int, when: datetime) -> Job:
    """The job that published ``relative_path`` (that version of it: ``identity``) at ``when``."""
    unset: dict[str, Any] = dict.fromkeys(NOT_YET)
    return Job(
        id=1,
        source=source,
        relative_path=relative_path,
        identity=identity,
        size=size,
        mtime=when,
        dataset="abcd-1234",
        mapping_index=0,
        state=JobState.PUBLISHED,
        attempts=0,
        error_count=0,
        discovered_at=when,
        updated_at=when,
        **unset,
    )


async def add_job(
    store: StateStore,
    relative_path: str,
    *,
    identity: str,
    mtime: datetime,
    size: int = 10,
    dataset: str = "abcd-1234",
    mapping_index: int = 0,
    source: str = "drop",
    **extra: Any,
) -> Job:
    """A new job, recorded as discovery records one; the store must take it."""
    job = await store.add_job(
        source=source,
        relative_path=relative_path,
        identity=identity,
        size=size,
        mtime=mtime,
        dataset=dataset,
        mapping_index=mapping_index,
        **extra,
    )
    assert job is not None
    return job
