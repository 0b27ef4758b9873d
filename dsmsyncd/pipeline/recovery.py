"""After a crash or a failure: resume, clean up, quarantine, or retry later.

Resuming a job that an earlier attempt left half-way is how "never twice" is kept.

Only apply changes the dataset, so everything here is about apply (DESIGN.md,
"Recovery"):

* A revision is recorded → read it. If it has task sets, an apply was sent: follow
  the newest one and never apply again. If it is closed without one, it was
  discarded: start over. If the job had its output schema recorded, the upload is
  complete: continue to the checks and apply. Otherwise the upload may be partial:
  discard the revision and start over.
* No revision is recorded but the job had started → a crash (or a lost reply)
  between "create revision" and "record seq" may have left an orphan. It is
  recognised on the dataset's open revisions as created by our user, inside the
  job's time window, never applied, with no source or only sources carrying our
  file name — and only then discarded. A revision we cannot prove is ours (people
  stage revisions by hand and publish them later) is left alone.

A failure ends the attempt one of three ways. What the file or the server refuses is
quarantined with a report, after the job's open revision is discarded (no draft
lingers); a transport fault, a 5xx/429 or refused credentials (401/403: a rotated
password is the operator's to fix, not the file's fault) leave the job
FAILED_RETRYABLE with its recorded ids kept (the next attempt resumes from them) and
a jittered, capped backoff;
a file that changed or vanished while being read ends SKIPPED with the reason
recorded, its revision discarded.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from dsmsyncd.blob import BlobChanged, BlobGone, BlobUnreadable
from dsmsyncd.daemon.job_routing import HELD_REASON, held_message
from dsmsyncd.dsmapi import (
    AuthError,
    OutcomeUnknown,
    RejectedError,
    ResourceFailed,
    RetryableServerError,
    Revision,
    TaskSet,
    TransportError,
)
from dsmsyncd.finalize.folder import QuarantineReason, QuarantineReport, ReportedFile
from dsmsyncd.pipeline.row_errors import wait_for_processing
from dsmsyncd.state import Job, JobState, JobUpdate

if TYPE_CHECKING:
    from dsmsyncd.pipeline.sync_job import JobRun

logger = logging.getLogger("dsmsyncd.pipeline.sync_job")

DRY_RUN_SAMPLE_ROWS = 10
CLEARED_IDS: JobUpdate = {
    "revision_seq": None,
    "revision_id": None,
    "source_id": None,
    "output_schema_id": None,
    "task_set_id": None,
    "error_count": 0,
}


class Quarantine(Exception):
    """Control flow: the file cannot be published; carries what goes into its report."""

    def __init__(
        self,
        reason: QuarantineReason,
        message: str,
        *,
        error_rows: Sequence[Any] = (),
        parse_errors: Sequence[Any] = (),
        parse_error_count: int = 0,
        request_id: str | None = None,
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason: QuarantineReason = reason
        self.message = message
        self.error_rows = list(error_rows)
        self.parse_errors = list(parse_errors)
        self.parse_error_count = parse_error_count
        self.request_id = request_id

    def __repr__(self) -> str:
        return f"Quarantine({self.reason!r}, {self.message!r})"


def upload_filename(job: Job) -> str:
    """The file name sent with the upload source; orphans are recognised by it."""
    return PurePosixPath(job.relative_path).name


async def resume_recorded(run: JobRun) -> Job | None:
    """Continue from the job's recorded revision; None means "start over" (now DISCARDED)."""
    job = run.job
    assert job.revision_seq is not None
    try:
        revision = await run.client.get_revision(job.dataset, job.revision_seq)
    except RejectedError as exc:
        if exc.status != 404:
            raise
        await run.start_over(f"revision {job.revision_seq} no longer exists", discard=False)
        return None
    run.revision = revision
    run.pipeline.auth_accepted()
    if revision.task_sets:
        task_set = newest_task_set(revision)
        if job.state is not JobState.APPLYING or job.task_set_id != task_set.id:
            fields: JobUpdate = {} if task_set.id is None else {"task_set_id": int(task_set.id)}
            await run.to(JobState.APPLYING, {"recovered": "following the apply job"}, **fields)
        logger.info("recovery: following apply job %s", task_set.id, extra=run.extra)
        return await run.follow(task_set)
    if not revision.is_open:
        await run.start_over("its revision was closed without an apply", discard=False)
        return None
    if job.output_schema_id is not None and job.source_id is not None:
        logger.info("recovery: upload complete; continuing to apply", extra=run.extra)
        run.source = await run.client.get_source(job.source_id)
        processed = await wait_for_processing(run.client, run.source)
        if processed.schema.id != job.output_schema_id or processed.error_count != job.error_count:
            await run.record_processed(processed)
        return await run.check_and_apply(processed)
    await run.start_over(f"interrupted while {job.state.value}", discard=True)
    return None


def newest_task_set(revision: Revision) -> TaskSet:
    newest = max(revision.task_sets, key=lambda t: int(t.get("id") or 0))
    return TaskSet.from_envelope({"resource": newest, "links": {}})


async def apply_outcome(run: JobRun, unknown: OutcomeUnknown) -> TaskSet:
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
        logger.warning("apply not taken by the server (%s): will retry", unknown, extra=run.extra)
        raise unknown
    task_set = newest_task_set(revision)
    logger.warning(
        "the apply's connection failed after the server took it (%s): following apply job %s",
        unknown,
        task_set.id,
        extra=run.extra,
    )
    return task_set


async def discard_orphans(run: JobRun) -> list[int]:
    """Discard the open revisions provably left by this job; their seqs."""
    job = run.job
    assert job.started_at is not None
    since = job.started_at - timedelta(seconds=run.ctx.orphan_skew_s)
    user_id = await run.pipeline.user_id()
    filename = upload_filename(job)
    discarded: list[int] = []
    for revision in await run.client.list_revisions(job.dataset, open_only=True):
        if not await _is_our_orphan(run, revision, user_id, since, filename):
            continue
        await run.client.discard_revision(revision)
        discarded.append(revision.seq)
        logger.warning("recovery: discarded orphan revision %s", revision.seq, extra=run.extra)
    if discarded:
        await run.to(job.state, {"discarded_orphans": discarded})
    return discarded


async def _is_our_orphan(
    run: JobRun, revision: Revision, user_id: str, since: datetime, filename: str
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


# -- failures ---------------------------------------------------------------------------


def as_quarantine(exc: BaseException, job: Job) -> Quarantine | None:
    """The quarantine a failure calls for; None when it may heal (retry later instead)."""
    if isinstance(exc, Quarantine):
        return exc
    if isinstance(exc, FileNotFoundError):
        return Quarantine(
            "file_vanished",
            f"{job.relative_path} disappeared before it was sent ({exc.strerror}); nothing "
            "was published; drop the file again to publish it",
        )
    # AuthError is not here on purpose: refused credentials (a rotated password, a
    # revoked right) are the operator's to fix, not the file's fault; the job waits
    # and retries (``retry_later``) until the target accepts them again.
    if isinstance(exc, RejectedError):
        return Quarantine(
            "rejected_by_server",
            f"the server rejected {exc.method} {exc.url}: {exc.server_message} (HTTP {exc.status})",
            request_id=exc.request_id,
        )
    if isinstance(exc, ResourceFailed):
        if exc.what.startswith("source"):
            return Quarantine(
                "unparsable_file",
                f"the server could not parse the file: {exc.reason}; fix the file and drop "
                "it again",
            )
        return Quarantine(
            "transform_failed",
            f"{exc}; fix the file or the import config's transform and drop the file again",
        )
    return None


async def discard_open_revision(run: JobRun) -> None:
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
        logger.warning("could not discard revision %s: %s", revision.seq, exc, extra=run.extra)


async def quarantine(run: JobRun, refusal: Quarantine) -> Job:
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
    logger.warning("quarantined: %s", refusal, extra=run.extra)
    job = await run.to(JobState.QUARANTINED, error=str(refusal), content_sha256=sha)
    report = QuarantineReport(
        reason=refusal.reason,
        message=refusal.message,
        dataset=job.dataset,
        file=ReportedFile(job.relative_path, job.size, sha, job.source),
        revision_seq=job.revision_seq,
        revision_id=job.revision_id,
        error_count=job.error_count,
        error_rows=refusal.error_rows,
        parse_error_count=refusal.parse_error_count,
        parse_errors=refusal.parse_errors,
        server_request_id=refusal.request_id,
        discovered_at=job.discovered_at,
        started_at=job.started_at,
        quarantined_at=run.ctx.clock(),
    )
    try:
        where = await run.ctx.finalizer_for(job).quarantine(job, run.mapping, report)
    except OSError as exc:
        logger.error("could not quarantine the file: %s", exc, extra=run.extra)
        where = f"left in place, report not written: {exc}"
    details = {"reason": refusal.reason, "file": where}
    await run.to(JobState.QUARANTINED, details, finished_at=job.finished_at)
    run.ctx.metrics.quarantined(job.dataset, refusal.reason)
    return run.job


async def hold(run: JobRun, why: str) -> Job:
    """No mapping takes the job any more: discard its draft, park it as HELD, say so once.

    ``job_routing.release_held`` puts it back in its lane when a mapping is back.
    """
    await discard_open_revision(run)
    message = held_message(why)
    logger.warning("%s", message, extra=run.extra)
    fields: JobUpdate = {**CLEARED_IDS, "error": message, "next_attempt_at": None}
    job = await run.to(JobState.HELD, {"reason": HELD_REASON, "message": why}, **fields)
    run.ctx.metrics.finished(job.dataset, "held")
    return job


async def skip_gone(run: JobRun, gone: BlobGone) -> Job:
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
    logger.warning("skipped, %s: %s", reason, gone, extra=run.extra)
    job = await run.to(JobState.SKIPPED, details, error=str(gone))
    run.ctx.metrics.finished(job.dataset, "skipped")
    return job


async def unreadable(run: JobRun, exc: BlobUnreadable) -> Job:
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


async def retry_later(run: JobRun, exc: BaseException, *, read_failures: int = 0) -> Job:
    """FAILED_RETRYABLE, ids kept, next attempt after a jittered exponential backoff."""
    attempts = run.job.attempts + 1
    ceiling = min(run.ctx.retry_max_s, run.ctx.retry_base_s * 2 ** (attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # jitter keeps many jobs' retries apart
    kind = _failure_kind(exc)
    if isinstance(exc, AuthError):
        run.pipeline.auth_refused(exc)
    else:
        logger.warning("will retry in %.0fs: %s", delay, exc, extra=run.extra)
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
