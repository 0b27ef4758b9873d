"""Crash recovery: a job interrupted at any step resumes or cleans up, never applies twice.

A crash is a ``Crash`` raised by the store in place of one state write, so the steps
before it really happened on the real server and the ones after it never ran.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from dsmsyncd.dsmapi import Credentials, DsmapiClient, RetryPolicy
from dsmsyncd.server.catalog import revisions, users
from dsmsyncd.state import JobState
from tests.daemon.integration.harness import SEED, Harness
from tests.daemon.support.datasets import all_rows, count_rows, open_revisions
from tests.daemon.support.jobs import add_job


async def test_recovery_applied_revision_is_not_applied_again(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    # Dies after PUT apply, before the task set id is written.
    left = await harness.crash(job, lambda state, kw: "task_set_id" in kw)
    assert left.state is JobState.APPLYING
    assert left.task_set_id is None

    done = await harness.resume(left)
    assert await count_rows(client, ff) == 4
    revision = await client.get_revision(ff, done.revision_seq or 0)
    assert len(revision.task_sets) == 1
    assert done.task_set_id == revision.task_sets[0]["id"]
    assert not (harness.drop / "more.csv").exists()


async def test_recovery_committed_upload_continues_on_its_revision(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    # Dies with the upload committed but PROCESSING never written: left in UPLOADING.
    left = await harness.crash(job, lambda state, kw: state is JobState.PROCESSING)
    assert left.state is JobState.UPLOADING
    assert left.revision_seq is not None

    done = await harness.resume(left)
    # The server has every byte: nothing is sent again, no second revision is opened.
    assert done.revision_seq == left.revision_seq
    assert [r["id"] for r in await all_rows(client, ff)] == ["1", "2", "3", "4"]
    assert not await open_revisions(client, ff)
    assert (await harness.details(done))["recovered"] == "the upload was committed"
    assert harness.metrics.upload_resumes.labels(ff)._value.get() == 1


async def test_recovery_orphan_revision_found_and_discarded_others_left_alone(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    # Dies between "create revision" and "record its seq": an orphan on the server.
    left = await harness.crash(job, lambda state, kw: "revision_seq" in kw)
    assert (left.state, left.revision_seq) == (JobState.OPENING, None)
    (orphan,) = await open_revisions(client, ff)

    # A person staged revisions meanwhile: one as another user, one as our user with
    # another file. Neither can be proved to be this job's.
    meta = harness.server.state.meta
    other = users.find_user(meta, "other")
    assert other is not None
    action = {"type": "update", "permission": None, "schema": None}
    by_other = revisions.create(meta, ff, other, action=action, metadata={})
    staged = await client.open_revision(ff, "update")
    await client.create_upload_source(staged, "hand-made.csv")

    done = await harness.resume(left)
    assert await count_rows(client, ff) == 4
    still_open = {r.seq for r in await open_revisions(client, ff)}
    assert still_open == {int(by_other["revision_seq"]), staged.seq}
    assert (await client.get_revision(ff, orphan.seq)).closed_at is not None
    assert (await harness.details(done))["discarded_orphans"] == [orphan.seq]


async def test_recovery_processing_job_continues_without_new_revision(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    # Dies right before APPLYING: output schema recorded, nothing applied.
    left = await harness.crash(job, lambda state, kw: state is JobState.APPLYING)
    assert left.state is JobState.PROCESSING
    assert left.output_schema_id is not None

    done = await harness.resume(left)
    assert done.revision_seq == left.revision_seq
    assert await count_rows(client, ff) == 4


async def test_pipeline_transport_failure_is_retryable(harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = DsmapiClient(
        f"http://127.0.0.1:{port}",
        Credentials(username="robot", password="robot-pw"),
        retry=RetryPolicy(attempts=1),
    )
    m = harness.mapping("abcd-1234")
    job = await harness.add_job(m, "x.csv", SEED)
    before = datetime.now(UTC)
    async with dead:
        failed = await harness.pipeline(client=dead).run(job)
    assert failed.state is JobState.FAILED_RETRYABLE
    assert failed.attempts == 1
    assert failed.next_attempt_at is not None
    assert failed.next_attempt_at > before
    assert failed.error is not None
    assert (harness.drop / "x.csv").exists()
    assert harness.metrics.retries.labels("job_transport")._value.get() == 1


async def test_pipeline_retryable_job_resumes_from_recorded_ids(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    left = await harness.crash(job, lambda state, kw: state is JobState.APPLYING)
    failed = await harness.store.transition(
        left.id, JobState.FAILED_RETRYABLE, expect=left.state, attempts=1, error="503"
    )
    done = await harness.resume(failed)
    assert done.revision_seq == left.revision_seq
    assert await count_rows(client, ff) == 4


async def test_recovery_resumed_job_finalizes_its_sidecar(
    harness: Harness, client: DsmapiClient
) -> None:
    ff, job = await harness.seeded_job()
    sidecar = harness.drop / "more.csv.meta.json"
    sidecar.write_bytes(b'{"name": "Sent before the crash"}')
    _, identity = harness.open_beside(job, sidecar.name)
    await add_job(harness.store, sidecar.name, identity=identity, mtime=datetime.now(UTC))
    # Dies with the upload committed: the metadata went with the revision already.
    left = await harness.crash(job, lambda state, kw: state is JobState.PROCESSING)
    assert left.state is JobState.UPLOADING

    done = await harness.resume(left)
    assert (await client.get_view(ff))["name"] == "Sent before the crash"
    assert "more.csv.meta.json" in (await harness.details(done))["sidecar"]
    assert sorted(p.name for p in harness.archive.rglob("*") if p.is_file()) == [
        "more.csv",
        "more.csv.meta.json",
    ]
