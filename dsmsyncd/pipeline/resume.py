"""Resume a job that an earlier attempt left half-way: how "never twice" is kept.

Only apply changes the dataset, so everything here is about apply (DESIGN.md,
"Recovery"):

* A revision is recorded → read it. If it has task sets, an apply was sent: follow
  the newest one and never apply again. If it is closed without one, it was
  discarded: start over. If the job had its output schema recorded, the upload is
  complete: continue to the checks and apply. If it had its source recorded, the
  upload may be partial: send only the chunks the server has not acknowledged
  (``upload_resume.py``), or start over when that is not safe.
* No revision is recorded but the job had started → a crash (or a lost reply)
  between "create revision" and "record seq" may have left an orphan. It is
  recognised on the dataset's open revisions as created by our user, inside the
  job's time window, never applied, with no source or only sources carrying our
  file name — and only then discarded. A revision we cannot prove is ours (people
  stage revisions by hand and publish them later) is left alone.
* An apply whose connection failed is never sent again blindly: the revision says
  whether the server took it (``apply_outcome``).

A STAGED job is never resumed: its open revision waits for an operator
(``staging.py``). ``dsmsyncd apply`` moves it to APPLYING, and from there this module
takes it like any job in APPLYING: follow the apply if the revision has one, else
check and apply.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from dsmsyncd.dsmapi import OutcomeUnknown, RejectedError, Revision, TaskSet
from dsmsyncd.pipeline import upload_resume
from dsmsyncd.pipeline.context import JOB_LOGGER_NAME, RunningJob
from dsmsyncd.pipeline.row_errors import wait_for_processing
from dsmsyncd.state import Job, JobState, JobUpdate

logger = logging.getLogger(JOB_LOGGER_NAME)


def upload_filename(job: Job) -> str:
    """The file name sent with the upload source; orphans are recognised by it."""
    return PurePosixPath(job.relative_path).name


async def resume_recorded(run: RunningJob) -> Job | None:
    """Continue from the job's recorded revision; None means "start over" (now DISCARDED)."""
    job = run.job
    assert job.revision_seq is not None
    try:
        revision = await run.client.get_revision(job.dataset, job.revision_seq)
    except RejectedError as exc:
        if exc.status != 404:
            raise
        await _revision_gone(run, f"revision {job.revision_seq} no longer exists")
        return None
    run.revision = revision
    run.account.accepted()
    if revision.task_sets:
        task_set = newest_task_set(revision)
        if job.state is not JobState.APPLYING or job.task_set_id != task_set.id:
            fields: JobUpdate = {} if task_set.id is None else {"task_set_id": int(task_set.id)}
            await run.to(JobState.APPLYING, {"recovered": "following the apply job"}, **fields)
        logger.info("recovery: following apply job %s", task_set.id)
        return await run.follow(task_set)
    if not revision.is_open:
        await _revision_gone(run, "its revision was closed without an apply")
        return None
    if job.output_schema_id is not None and job.source_id is not None:
        logger.info("recovery: upload complete; continuing to apply")
        run.source = await run.client.get_source(job.source_id)
        processed = await wait_for_processing(run.client, run.source)
        if processed.schema.id != job.output_schema_id or processed.error_count != job.error_count:
            await run.record_processed(processed)
        return await run.check_and_apply(processed)
    if job.source_id is not None:
        return await upload_resume.resume_upload(run)
    await run.start_over(f"interrupted while {job.state.value}", discard=True)
    return None


async def _revision_gone(run: RunningJob, why: str) -> None:
    """Start over without a revision to discard; an upload in progress says so."""
    if run.job.source_id is not None and run.job.output_schema_id is None:
        await upload_resume.restart(run, "revision_gone", why, discard=False)
    else:
        await run.start_over(why, discard=False)


def newest_task_set(revision: Revision) -> TaskSet:
    newest = max(revision.task_sets, key=lambda t: int(t.get("id") or 0))
    return TaskSet.from_envelope({"resource": newest, "links": {}})


async def apply_outcome(run: RunningJob, unknown: OutcomeUnknown) -> TaskSet:
    """The apply request's connection failed: did the server take it? Read the revision.

    The request is never sent again from here: if the revision has an apply job, that
    is the one to follow; if it has none, ``unknown`` is raised and the job retries
    later, when ``resume_recorded`` reads the revision again before applying (a slow
    server may still be taking the lost request now).
    """
    assert run.revision is not None
    revision = await run.client.get_revision(run.job.dataset, run.revision.seq)
    run.revision = revision
    if not revision.task_sets:
        logger.warning("apply not taken by the server (%s): will retry", unknown)
        raise unknown
    task_set = newest_task_set(revision)
    logger.warning(
        "the apply's connection failed after the server took it (%s): following apply job %s",
        unknown,
        task_set.id,
    )
    return task_set


async def discard_orphans(run: RunningJob) -> list[int]:
    """Discard the open revisions provably left by this job; their seqs."""
    job = run.job
    assert job.started_at is not None
    since = job.started_at - timedelta(seconds=run.ctx.orphan_skew_s)
    user_id = await run.account.user_id()
    filename = upload_filename(job)
    discarded: list[int] = []
    for revision in await run.client.list_revisions(job.dataset, open_only=True):
        if not await _is_our_orphan(run, revision, user_id, since, filename):
            continue
        await run.client.discard_revision(revision)
        discarded.append(revision.seq)
        logger.warning("recovery: discarded orphan revision %s", revision.seq)
    if discarded:
        await run.to(job.state, {"discarded_orphans": discarded})
    return discarded


async def _is_our_orphan(
    run: RunningJob, revision: Revision, user_id: str, since: datetime, filename: str
) -> bool:
    if not revision.is_open or revision.task_sets:
        return False
    creator = revision.raw.get("created_by") or {}
    if str(creator.get("user_id")) != user_id:
        return False
    created = parse_server_time(revision.raw.get("created_at"))
    if created is None or created < since:
        return False
    sources = await run.client.list_sources(revision)
    return all(
        (source.raw.get("source_type") or {}).get("filename") == filename for source in sources
    )


def parse_server_time(value: object) -> datetime | None:
    """DSMAPI timestamps are ISO 8601, naive ones in UTC (digest §1.1)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
