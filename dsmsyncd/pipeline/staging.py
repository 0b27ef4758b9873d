"""Staged publishing: a revision left open for a person to read, published or thrown away
later (``publish = "stage"``; issue 10).

A staged job has done everything but apply: uploaded, processed, passed the row-error
threshold and the replace guards. It ends STAGED with its revision open, the file still
in its source, and heads its dataset's lane, blocking it (``state.lanes.head_may_run``):
a newer file either waits behind it or, routed with ``on_staged = "supersede"``,
supersedes it. Nobody resumes a STAGED job after a restart; it moves only when a
person or a newer file says so, and always under one compare-and-set from STAGED, so
of several actors (two operators, an operator and a superseding daemon) exactly one
moves it:

* ``dsmsyncd apply`` moves it STAGED → APPLYING and runs the apply through the
  pipeline's own resume path (guards again, apply, wait, finalize);
* ``dsmsyncd discard`` and supersession move it STAGED → QUARANTINED first, then
  discard the revision and quarantine the file with a report (``retire``).
"""

from __future__ import annotations

import logging

from dsmsyncd.dsmapi import DsmapiError
from dsmsyncd.finalize.report import QuarantineReason, QuarantineReport
from dsmsyncd.pipeline.context import JOB_LOGGER_NAME, RunningJob
from dsmsyncd.pipeline.outcomes import discard_open_revision
from dsmsyncd.state import Job, JobState, StaleTransition

logger = logging.getLogger(JOB_LOGGER_NAME)


def revision_url(target_url: str, dataset: str, seq: int | None) -> str | None:
    """The revision's page on the site, where a person reads it before it is applied."""
    if seq is None:
        return None
    return f"{target_url.rstrip('/')}/d/{dataset}/revisions/{seq}"


def apply_hint(dataset: str, seq: int | None) -> str:
    """How an operator publishes or drops a staged revision: for logs and ``status``."""
    target = dataset if seq is None else f"{dataset}/{seq}"
    return f"dsmsyncd apply -c FILE {target} (or: dsmsyncd discard -c FILE {target})"


async def stage(run: RunningJob) -> Job:
    """Every check passed: leave the revision open, end STAGED, say where to read it."""
    url = revision_url(run.client.base_url, run.job.dataset, run.job.revision_seq)
    job = await run.to(JobState.STAGED, {"revision_url": url}, error=None, next_attempt_at=None)
    run.ctx.metrics.finished(job.dataset, "staged")
    logger.info(
        "staged: revision %s is open at %s; publish it with %s",
        job.revision_seq,
        url,
        apply_hint(job.dataset, job.revision_seq),
    )
    return job


async def supersede(run: RunningJob) -> Job:
    """A newer file routed with ``on_staged = "supersede"`` waits behind this staged job:
    throw this one's revision away and quarantine its file, saying why."""
    job = run.job
    message = (
        f"superseded: a newer file for dataset {job.dataset} arrived while revision "
        f'{job.revision_seq} was staged, and its mapping says on_staged = "supersede". '
        "The staged revision was discarded and this file was not published; drop it "
        "again as a new file to publish it after all"
    )
    retired = await retire(run, "superseded", message)
    return retired if retired is not None else await run.ctx.store.get_job(job.id)


async def retire(run: RunningJob, reason: QuarantineReason, message: str) -> Job | None:
    """STAGED → QUARANTINED (the one compare-and-set that makes this caller the actor),
    then discard the revision and quarantine the file with a report.

    Returns None when another actor moved the job first (this one did nothing). A revision
    the target will not discard now (a network fault) stays open, never applied, and
    is named in the job's history; a crash after the first step leaves the file to the
    startup sweep, which quarantines it with the recorded error.
    """
    sha = run.job.content_sha256 or await run.content_sha()
    try:
        job = await run.to(
            JobState.QUARANTINED, {"reason": reason}, error=message, content_sha256=sha
        )
    except StaleTransition as moved:
        logger.info("not %s: %s", reason, moved)
        return None
    details: dict[str, object] = {"reason": reason}
    try:
        await discard_open_revision(run)
    except DsmapiError as exc:
        logger.warning("revision %s could not be discarded: %s", job.revision_seq, exc)
        details["revision_not_discarded"] = str(exc)[:500]
    report = QuarantineReport.of_job(
        job, reason, message, sha256=sha, quarantined_at=run.ctx.clock()
    )
    try:
        details["file"] = await run.ctx.finalizer_for(job).quarantine(job, run.mapping, report)
    except OSError as exc:
        logger.error("could not quarantine the file: %s", exc)
        details["file"] = f"report not written: {exc}"
    await run.to(JobState.QUARANTINED, details, finished_at=job.finished_at)
    run.ctx.metrics.quarantined(job.dataset, reason)
    logger.warning("quarantined (%s): %s", reason, message)
    return run.job
