"""How an attempt at a job ends: published (the file moved), quarantined, held,
skipped, retried later, or a dry run's verdict.

What the file or the server refuses is quarantined with a report, after the job's open
revision is discarded (no draft lingers); a transport fault, a 5xx/429 or refused
credentials (401/403: a rotated password is the operator's to fix, not the file's
fault) leave the job FAILED_RETRYABLE with its recorded ids kept (the next attempt
resumes from them) and a jittered, capped backoff; a file that changed or vanished
while being read ends SKIPPED with the reason recorded, its revision discarded; a job
no mapping takes any more is HELD until one does.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from dsmsyncd.blob import BlobChanged, BlobGone, BlobUnreadable
from dsmsyncd.dsmapi import AuthError, RejectedError, RetryableServerError, TransportError
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.observe.metrics import Outcome
from dsmsyncd.pipeline.context import (
    CLEARED_IDS,
    DRY_RUN_SAMPLE_ROWS,
    JOB_LOGGER_NAME,
    RunningJob,
)
from dsmsyncd.pipeline.job_routing import HELD_REASON, held_message
from dsmsyncd.pipeline.refusals import Quarantine
from dsmsyncd.pipeline.row_errors import Processed, data_error_rows, parse_error_rows
from dsmsyncd.state import Job, JobState, JobUpdate

logger = logging.getLogger(JOB_LOGGER_NAME)


async def succeeded(run: RunningJob, outcome: Outcome) -> Job:
    """The job is terminal already; move the file, then record where it went."""
    began = time.monotonic()
    try:
        where = await run.ctx.finalizer_for(run.job).succeeded(run.job, run.mapping)
    except OSError as exc:
        logger.error("could not finalize the file: %s", exc)
        where = f"left in place: {exc}"
    details: dict[str, object] = {"file": where}
    if run.sidecar is not None:
        details["sidecar"] = await _finalize_sidecar(run, None)
    # Unsynced: the outcome itself was synced before the move; a power loss may lose
    # only where the file went.
    await run.to(run.job.state, details, finished_at=run.job.finished_at, synced=False)
    run.ctx.metrics.phase("finalize", time.monotonic() - began)
    run.ctx.metrics.finished(run.job.dataset, outcome)
    logger.info("%s (%s)", outcome, where)
    return run.job


# Task-set log detail keys (digest, TaskSet ``log``) → the job event's keys.
ROW_COUNT_KEYS = {
    "Rows Created": "rows_created",
    "Rows Updated": "rows_updated",
    "Rows Deleted": "rows_deleted",
}


def applied_row_counts(log: list[dict[str, Any]]) -> dict[str, int]:
    """The rows an apply created, updated and deleted, as the server's task-set log
    reports them (the newest entry that has them); empty if it reports none."""
    for entry in log:
        details = entry.get("details")
        if isinstance(details, dict) and "Rows Created" in details:
            return {
                ours: int(details[theirs])
                for theirs, ours in ROW_COUNT_KEYS.items()
                if isinstance(details.get(theirs), int)
            }
    return {}


async def _finalize_sidecar(run: RunningJob, report: QuarantineReport | None) -> str:
    """Move the data file's sidecar where the file went (archive, delete, keep or, with
    the same report, quarantine): the pair stays together."""
    assert run.sidecar is not None
    paired = run.sidecar.job
    finalizer = run.ctx.finalizer_for(paired)
    try:
        if report is None:
            return await finalizer.succeeded(paired, run.mapping)
        return await finalizer.quarantine(paired, run.mapping, report)
    except OSError as exc:
        logger.error("could not finalize the metadata sidecar %s: %s", paired.relative_path, exc)
        return f"left in place: {exc}"


async def would_apply(run: RunningJob, processed: Processed) -> Job:
    """A dry run passed every check: discard the revision, say what would have happened."""
    assert run.source is not None
    rows = await data_error_rows(run.client, processed, run.source.id)
    parse_errors = await parse_error_rows(run.client, processed, run.source)
    await discard_open_revision(run)
    details: dict[str, object] = {
        "dry_run": True,
        "outcome": "would_apply",
        "total_rows": processed.schema.total_rows,
        "error_count": processed.error_count,
        "error_rows": rows[:DRY_RUN_SAMPLE_ROWS],
        "parse_error_count": processed.parse_error_count,
        "parse_errors": parse_errors[:DRY_RUN_SAMPLE_ROWS],
    }
    return await run.to(JobState.DISCARDED, details, **CLEARED_IDS)


async def discard_open_revision(run: RunningJob) -> None:
    """Best effort: a refused discard is logged; a transport fault retries the job."""
    revision = run.revision
    if revision is None and run.job.revision_seq is not None:
        try:
            revision = await run.client.get_revision(run.job.dataset, run.job.revision_seq)
        except (AuthError, RejectedError):
            return
    if revision is None or not revision.is_open:
        return
    try:
        await run.client.discard_revision(revision)
    except (AuthError, RejectedError) as exc:
        logger.warning("could not discard revision %s: %s", revision.seq, exc)


async def quarantine(run: RunningJob, refusal: Quarantine) -> Job:
    """Discard the open revision, record QUARANTINED, move the file, record where to."""
    await discard_open_revision(run)
    if run.dry_run:
        details: dict[str, object] = {
            "dry_run": True,
            "outcome": "would_quarantine",
            "reason": refusal.reason,
            "message": refusal.message,
            "error_count": run.job.error_count,
            "error_rows": refusal.error_rows[:DRY_RUN_SAMPLE_ROWS],
            "parse_error_count": refusal.parse_error_count,
            "parse_errors": refusal.parse_errors[:DRY_RUN_SAMPLE_ROWS],
        }
        return await run.to(JobState.DISCARDED, details, **CLEARED_IDS)
    sha = run.job.content_sha256 or await run.content_sha()
    logger.warning("quarantined: %s", refusal)
    job = await run.to(JobState.QUARANTINED, error=str(refusal), content_sha256=sha)
    report = QuarantineReport.of_job(
        job,
        refusal.reason,
        refusal.message,
        sha256=sha,
        error_rows=refusal.error_rows,
        parse_error_count=refusal.parse_error_count,
        parse_errors=refusal.parse_errors,
        server_request_id=refusal.request_id,
        quarantined_at=run.ctx.clock(),
    )
    try:
        where = await run.ctx.finalizer_for(job).quarantine(job, run.mapping, report)
    except OSError as exc:
        logger.error("could not quarantine the file: %s", exc)
        where = f"report not written: {exc}"
    details = {"reason": refusal.reason, "file": where}
    if run.sidecar is not None:
        details["sidecar"] = await _finalize_sidecar(run, report)
    await run.to(JobState.QUARANTINED, details, finished_at=job.finished_at)
    run.ctx.metrics.quarantined(job.dataset, refusal.reason)
    return run.job


async def hold(run: RunningJob, why: str) -> Job:
    """No mapping takes the job any more: discard its draft, park it as HELD, say so once.

    ``job_routing.release_held`` puts it back in its lane when a mapping is back.
    """
    await discard_open_revision(run)
    message = held_message(why)
    logger.warning("%s", message)
    fields: JobUpdate = {**CLEARED_IDS, "error": message, "next_attempt_at": None}
    job = await run.to(JobState.HELD, {"reason": HELD_REASON, "message": why}, **fields)
    run.ctx.metrics.finished(job.dataset, "held")
    return job


async def skip_gone(run: RunningJob, gone: BlobGone) -> Job:
    """The file changed or vanished under the job: discard its revision, end SKIPPED.

    Reads all happen before apply, so nothing reached the dataset. An overwritten file
    is a new identity that discovery turns into a job of its own; a deleted one has
    nothing left to publish. The file is not finalized: what is there now is not what
    this job read, and its own job will archive it.
    """
    await discard_open_revision(run)
    reason = "file_changed" if isinstance(gone, BlobChanged) else "file_vanished"
    details: dict[str, object] = {
        "reason": reason,
        "message": str(gone),
        "revision_seq": run.job.revision_seq,
    }
    if run.dry_run:
        details |= {"dry_run": True, "outcome": "would_skip"}
        return await run.to(JobState.DISCARDED, details, **CLEARED_IDS)
    logger.warning("skipped, %s: %s", reason, gone)
    job = await run.to(JobState.SKIPPED, details, error=str(gone))
    run.ctx.metrics.finished(job.dataset, "skipped")
    return job


async def unreadable(run: RunningJob, exc: BlobUnreadable) -> Job:
    """The file cannot be read: retry with backoff, ``max_read_attempts`` times in all,
    then quarantine it, so that one unreadable file cannot block its dataset for good."""
    failures = run.job.read_failures + 1
    if failures < run.ctx.max_read_attempts:
        return await retry_later(run, exc, read_failures=failures)
    await run.to(run.job.state, {"read_failures": failures}, read_failures=failures)
    refusal = Quarantine(
        "file_unreadable",
        f"{run.job.relative_path} could not be read in {failures} attempt(s): {exc}. Make it "
        "a regular file the dsmsyncd user can read, then drop it again as a new file (copy "
        "it back into the drop folder: a file moved back unchanged is taken as already seen)",
    )
    return await quarantine(run, refusal)


async def retry_later(run: RunningJob, exc: BaseException, *, read_failures: int = 0) -> Job:
    """FAILED_RETRYABLE, ids kept, next attempt after a jittered exponential backoff."""
    attempts = run.job.attempts + 1
    ceiling = min(run.ctx.retry_max_s, run.ctx.retry_base_s * 2 ** (attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # jitter keeps many jobs' retries apart
    kind = _failure_kind(exc)
    if isinstance(exc, AuthError):
        run.account.refused(exc)
    else:
        logger.warning("will retry in %.0fs: %s", delay, exc)
    fields: JobUpdate = {
        "attempts": attempts,
        "error": str(exc)[:2000],
        "next_attempt_at": run.ctx.clock() + timedelta(seconds=delay),
    }
    if read_failures:
        fields["read_failures"] = read_failures
    await run.to(JobState.FAILED_RETRYABLE, {"kind": kind}, **fields)
    run.ctx.metrics.retried(f"job_{kind}")
    run.ctx.metrics.finished(run.job.dataset, "failed_retryable")
    return run.job


def _failure_kind(exc: BaseException) -> str:
    """A bounded label for the retry metric and the job's event."""
    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, TransportError):
        return "transport"
    if isinstance(exc, RetryableServerError):
        return "server"
    if isinstance(exc, BlobUnreadable):
        return "file_unreadable"
    return "file" if isinstance(exc, OSError) else "other"
