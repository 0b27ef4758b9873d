"""What a small file's job costs the state store: one commit per step of its history.

A synced commit of the SQLite store (``synchronous=FULL``) costs 0.2-3 ms of wall time
and ~0.1 ms of kernel CPU, and the store has one connection: with thousands of small
files its commits were the daemon's largest cost (issue 9, bench/RESULTS.md). A
one-chunk upload keeps no journal (resending the chunk is the recovery), a commit
answered with processing done is recorded with the schemas, and an apply answered
done with its outcome; the steps that are left are those that must be recorded before
the next thing the job does to the server or the file (``sync_job.py``). The server
is given time to answer the commit and the apply done (``answer_wait_s``), so the
count does not depend on its speed.

Of those, the steps that record only what the server answered are committed without an
``fsync`` (``synchronous=NORMAL`` for that transaction; README, "Guarantees"); the ones
before a revision is opened, before the apply and before the file is moved stay synced.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import Job, JobEvent, JobState, SqliteStateStore, UploadProgress
from tests.daemon.integration.harness import MORE, SEED, Harness
from tests.daemon.support.datasets import count_rows, publish_dataset


@dataclass
class Run:
    job: Job  # as the pipeline left it
    events: list[JobEvent]
    statements: list[str]  # every statement the store ran for the job
    journal: UploadProgress | None  # the upload journal left behind


async def run_one(tmp_path: Path, client: DsmapiClient, server: RunningServer) -> Run:
    """Publish MORE into a dataset seeded with SEED through a traced SQLite store."""
    server.state.answer_wait_s = 600.0
    statements: list[str] = []
    async with SqliteStateStore(tmp_path / "state.db", trace=statements.append) as store:
        harness = Harness(tmp_path / "files", client, store, server)
        ff = await publish_dataset(client, SEED)
        job = await harness.add_job(harness.mapping(ff), "more.csv", MORE)
        statements.clear()
        done = await harness.pipeline().run(job)
        run = Run(done, await store.events(job.id), statements, await store.upload_progress(job.id))
    assert done.state is JobState.PUBLISHED, done.error
    assert await count_rows(client, ff) == 4
    return run


async def test_a_small_files_job_commits_once_per_step(
    tmp_path: Path, client: DsmapiClient, server: RunningServer
) -> None:
    run = await run_one(tmp_path, client, server)

    steps = [(e.state, e.previous_state) for e in run.events[1:]]
    assert steps == [
        (JobState.OPENING, JobState.DISCOVERED),  # started_at (and the file's hash)
        (JobState.OPENING, JobState.OPENING),  # the revision's seq and id
        (JobState.UPLOADING, JobState.OPENING),  # the source's id
        (JobState.PROCESSING, JobState.UPLOADING),  # the upload and the schemas at once
        (JobState.APPLYING, JobState.PROCESSING),  # before the apply goes out
        (JobState.PUBLISHED, JobState.APPLYING),  # the apply's outcome and task set
        (JobState.PUBLISHED, JobState.PUBLISHED),  # where the file went
    ]
    assert run.statements.count("COMMIT") == len(steps)  # no journal, no other write
    assert synced_per_commit(run.statements) == [
        True,  # OPENING, started_at: the orphan search's window, before the revision
        False,  # the revision's ids: lost, the orphan search finds the revision
        False,  # the source's id: lost, the revision is discarded and the job starts over
        False,  # the schemas: lost, UPLOADING reads the committed source again
        True,  # APPLYING: on disk before the apply goes out (never twice)
        True,  # PUBLISHED: on disk before the file is moved
        False,  # where the file went
    ]
    assert run.events[1].details["content_sha256"] == run.job.content_sha256 is not None
    processing = run.events[4].details
    assert processing["chunks"] == 1
    assert processing["total_rows"] == 2
    assert run.events[6].details["task_set_id"] == run.job.task_set_id is not None


def synced_per_commit(statements: list[str]) -> list[bool]:
    """For each COMMIT in the trace, whether ``synchronous`` was FULL (the store's own)."""
    synced, per_commit = True, []
    for statement in statements:
        if statement.startswith("PRAGMA synchronous="):
            synced = statement == "PRAGMA synchronous=FULL"
        elif statement == "COMMIT":
            per_commit.append(synced)
    return per_commit


async def test_a_file_of_several_chunks_keeps_its_upload_journal(
    tmp_path: Path, client: DsmapiClient, server: RunningServer
) -> None:
    server.state.preferred_chunk_size = 8  # MORE (18 bytes) is three chunks
    run = await run_one(tmp_path, client, server)

    statements = run.statements
    assert sum(s.startswith("INSERT INTO job_uploads") for s in statements) == 1  # the plan
    assert sum(s.startswith("INSERT OR REPLACE INTO job_upload_chunks") for s in statements) == 3
    # The steps, the plan, each chunk as the server acknowledged it, and its forgetting.
    assert statements.count("COMMIT") == len(run.events) - 1 + 1 + 3 + 1
    assert run.journal is None
    # The journal's plan and chunks are synced, and so the unsynced steps before them.
    plan_at = next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO job_uploads"))
    assert synced_per_commit(statements[plan_at:])[:5] == [True] * 5
