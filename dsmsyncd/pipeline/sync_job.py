"""The SyncJob state machine: one dropped file, from whatever state it is in to an outcome.

The forward path (DESIGN.md, "The DSMAPI flow")::

    DISCOVERED ─hash─> SKIPPED (same content as the last publication)
        │ schema drift check (import configs): refuse before any revision exists
        v
    OPENING ─ open revision ─ record seq/id ─ create source ─> UPLOADING (source id)
        ─ chunks, commit ─> PROCESSING ─ output schema, rows in error recorded
          (parse errors of the input schema + data errors of the output schema)
        ─ row-error threshold, replace guards ─> APPLYING ─ PUT apply ─ task set id
        ─> PUBLISHED | AWAITING_APPROVAL | QUARANTINED (apply failed)
    publish = "stage": ─ checks passed ─> STAGED (revision left open; ``staging.py``)

Each state is written *before* its side effect and what the server returned right
*after* it (the store commits before ``transition`` returns), so after a crash the
row says which step may have happened; ``resume.py`` turns that into "follow",
"continue" or "discard and start over" — never a second apply (invariant 1).

Steps that only record what the server answered (revision, source, schemas, task set,
where the file went) are not synced to disk (``synced=False``): a kill -9 keeps them,
a power loss may lose them back to the job's last synced step, from where recovery
takes the path a crash between a request and its record takes. Synced are the steps
before what recovery could not find or undo: OPENING with ``started_at`` before a
revision is opened (the orphan search's window), APPLYING before the apply (never
twice), a terminal state before the file is moved; each carries the unsynced before it.

Failures branch on how they heal (``outcomes.py``): transport faults and 5xx/429
leave the job FAILED_RETRYABLE with its ids kept and a jittered, capped backoff;
everything the file or the server refuses (``refusals.Quarantine``) goes to quarantine
with a report, after the job's open revision is discarded so that no draft lingers
(invariant 2). A file or object that changes or vanishes while the job reads it
(``BlobGone``) ends the job SKIPPED, its revision discarded: the new version is a new
identity and runs as its own job.

Every line logged while a job runs carries its ``job``, ``file``, ``dataset`` and
``revision`` (``observe.job_keys.bind_job``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Unpack

from dsmsyncd.blob import Blob, BlobGone, BlobUnreadable, sha256_of
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.dsmapi import (
    DsmapiError,
    OutcomeUnknown,
    RejectedError,
    Revision,
    Source,
    TaskSet,
)
from dsmsyncd.dsmapi.client import processing_done
from dsmsyncd.observe.job_keys import bind_job, bind_revision
from dsmsyncd.pipeline import outcomes, replace_check, resume, sidecar, staging
from dsmsyncd.pipeline.context import (
    CLEARED_IDS,
    JOB_LOGGER_NAME,
    PairedSidecar,
    PipelineContext,
    TargetAccount,
)
from dsmsyncd.pipeline.guards import empty_file_message
from dsmsyncd.pipeline.job_routing import job_mapping
from dsmsyncd.pipeline.refusals import Quarantine, as_quarantine
from dsmsyncd.pipeline.row_errors import (
    Processed,
    data_error_rows,
    parse_error_rows,
    threshold_message,
    wait_for_processing,
)
from dsmsyncd.pipeline.schema_drift import check_schema_drift
from dsmsyncd.pipeline.upload import (
    ResumePoint,
    connections_warmed,
    content_type_for,
    upload_blob,
)
from dsmsyncd.pipeline.upload_resume import StoreJournal
from dsmsyncd.state import Job, JobState, JobUpdate

__all__ = ["JobRun", "Pipeline"]

logger = logging.getLogger(JOB_LOGGER_NAME)


class Pipeline:
    """Drives jobs; one instance serves every job of the daemon concurrently."""

    def __init__(self, ctx: PipelineContext) -> None:
        self.ctx = ctx
        self.account = TargetAccount(ctx.client)

    async def run(
        self,
        job: Job,
        *,
        dry_run: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> Job:
        """Take ``job`` to a terminal state or FAILED_RETRYABLE; returns the final Job.

        With ``dry_run`` nothing is applied and no file is moved: the revision is
        discarded after the checks and the job ends DISCARDED, its last event's
        details saying what would have happened. StaleTransition propagates: another
        worker moved the job, and this one must not act on it.
        """
        if job.terminal:
            return job
        keys = bind_job(
            job=job.id, file=job.relative_path, dataset=job.dataset, revision=job.revision_seq
        )
        with keys:
            return await JobRun(self, job, dry_run, on_progress).execute()


class JobRun:
    """One attempt at one job; ``job`` is always the row as last committed."""

    def __init__(
        self,
        pipeline: Pipeline,
        job: Job,
        dry_run: bool,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self.ctx = pipeline.ctx
        self.client = pipeline.ctx.client
        self.account = pipeline.account
        self.job = job
        self._mapping, self.held_because = job_mapping(job, pipeline.ctx.mappings)
        self.dry_run = dry_run
        self.revision: Revision | None = None
        self.source: Source | None = None
        self._on_progress = on_progress
        self._blob: Blob | None = None
        self.sidecar: PairedSidecar | None = None
        # The upload's PROCESSING step, when its commit answered with processing done:
        # written with the schemas, in one commit (``record_processed``).
        self._uploaded: dict[str, object] = {}
        # The file's hash, taken for ``skip_duplicates``: recorded with the first step.
        self._hashed: str | None = None

    # -- helpers ------------------------------------------------------------------------

    @property
    def mapping(self) -> MappingConfig:
        """The mapping the job runs with; a held job has none (``execute`` parks it first)."""
        assert self._mapping is not None, "a held job has no mapping"
        return self._mapping

    def blob(self) -> Blob:
        if self._blob is None:
            self._blob = self.ctx.open_blob(self.job)
        return self._blob

    async def content_sha(self) -> str | None:
        """The file's SHA-256 for a report, or None if the file is gone."""
        try:
            return await sha256_of(self.blob())
        except (OSError, BlobGone):
            return None

    async def to(
        self,
        state: JobState,
        details: dict[str, object] | None = None,
        *,
        synced: bool = True,
        **fields: Unpack[JobUpdate],
    ) -> Job:
        """Record a step (compare-and-set from the state last seen), committed on return;
        on disk too unless ``synced=False`` (module docstring)."""
        self.job = await self.ctx.store.transition(
            self.job.id, state, expect=self.job.state, details=details, synced=synced, **fields
        )
        bind_revision(self.job.revision_seq)
        return self.job

    async def start_over(self, why: str, *, discard: bool) -> None:
        """Discard the recorded revision (if asked) and forget its ids: DISCARDED."""
        seq = self.job.revision_seq
        if discard and self.revision is not None and self.revision.is_open:
            await self.client.discard_revision(self.revision)
        logger.info("starting over: %s", why)
        await self.to(JobState.DISCARDED, details={"why": why, "revision_seq": seq}, **CLEARED_IDS)
        await self.ctx.store.forget_upload(self.job.id)
        self.revision = None
        self.source = None

    # -- the run ------------------------------------------------------------------------

    async def execute(self) -> Job:
        try:
            try:
                if self.job.state is JobState.STAGED:
                    # Only ``on_staged = "supersede"`` behind it runs a staged head.
                    return await staging.supersede(self)
                if self.held_because is not None:
                    return await outcomes.hold(self, self.held_because)
                return await self._drive()
            except (Quarantine, DsmapiError, FileNotFoundError) as exc:
                refusal = as_quarantine(exc, self.job)
                if refusal is None:
                    raise
            except BlobGone as gone:
                return await outcomes.skip_gone(self, gone)
            return await outcomes.quarantine(self, refusal)
        except BlobUnreadable as exc:
            return await outcomes.unreadable(self, exc)
        except (DsmapiError, OSError) as exc:
            return await outcomes.retry_later(self, exc)

    async def _drive(self) -> Job:
        if self.job.revision_seq is not None:
            await sidecar.rejoin_sidecar(self)
            resumed = await resume.resume_recorded(self)
            if resumed is not None:
                return resumed
        elif self.job.started_at is not None:
            await resume.discard_orphans(self)
        return await self._fresh()

    async def _fresh(self) -> Job:
        if sidecar.is_sidecar(self.job):
            return await sidecar.metadata_only(self)
        if self.blob().size == 0:
            raise Quarantine(
                "empty_file", empty_file_message(self.job.relative_path, self.job.dataset)
            )
        try:
            paired = await sidecar.find_sidecar(self)
        except sidecar.SidecarPending as pending:
            return await outcomes.retry_later(self, pending)
        # New metadata is a change even when the data is not: a paired file is sent.
        if self.mapping.skip_duplicates and not self.dry_run and paired is None:
            skipped = await self._skip_if_duplicate()
            if skipped is not None:
                return skipped
        if self.mapping.import_config is not None:
            await check_schema_drift(
                self.client, self.blob(), self.mapping.import_config, self.job.dataset
            )
        # The chunks' connections open while the revision and source are created.
        async with connections_warmed(self.client, self.blob().size):
            await self._open()
        await self.upload()
        return await self.process_and_apply()

    async def _skip_if_duplicate(self) -> Job | None:
        sha = self.job.content_sha256 or await sha256_of(self.blob())
        duplicate = await self.ctx.store.find_published_hash(self.job.dataset, sha)
        if duplicate is None:
            if self.job.content_sha256 is None:
                # Recorded with the job's first step (``_open``), one commit fewer: a
                # crash before it costs a second reading of the file, nothing else.
                self._hashed = sha
            return None
        logger.info("same content as job %s: skipped", duplicate.id)
        await self.to(JobState.SKIPPED, {"duplicate_of": duplicate.id}, content_sha256=sha)
        return await outcomes.succeeded(self, "skipped")

    async def _open(self) -> None:
        fields: JobUpdate = {} if self.job.started_at else {"started_at": self.ctx.clock()}
        if self._hashed is not None:
            fields["content_sha256"] = self._hashed
        await self.to(JobState.OPENING, **fields)
        began = time.monotonic()
        try:
            if self.mapping.import_config is not None:
                revision = await self.client.open_revision_with_config(
                    self.job.dataset, self.mapping.import_config
                )
            else:
                assert self.mapping.action is not None  # the config requires one of the two
                revision = await self.client.open_revision(
                    self.job.dataset, self.mapping.action, metadata=self._sidecar_metadata()
                )
        except RejectedError as exc:
            if exc.status != 404:
                raise
            raise Quarantine(
                "unknown_dataset",
                f"dataset {self.job.dataset} (or its import config) was not found on "
                f"{self.client.base_url}: {exc.server_message}; check the mapping's dataset",
                request_id=exc.request_id,
            ) from exc
        self.revision = revision
        self.account.accepted()
        ids: JobUpdate = {"revision_seq": revision.seq, "revision_id": revision.id}
        await self.to(JobState.OPENING, synced=False, **ids)  # lost: ``discard_orphans``
        if self.mapping.import_config is not None and self.sidecar is not None:
            await self.client.set_revision_metadata(revision, self.sidecar.metadata)
        self.source = await self.client.create_upload_source(
            revision, resume.upload_filename(self.job)
        )
        # Unsynced: lost, the revision has no source recorded: discarded, started over.
        await self.to(JobState.UPLOADING, source_id=self.source.id, synced=False)
        self.ctx.metrics.phase("open", time.monotonic() - began)

    def _sidecar_metadata(self) -> dict[str, object] | None:
        return None if self.sidecar is None else self.sidecar.metadata

    async def upload(self, resume: ResumePoint | None = None) -> None:
        """Send the chunks not in ``resume`` (all of a fresh upload), each recorded as
        the server acknowledges it (``upload_resume.py``), then commit."""
        assert self.source is not None
        began = time.monotonic()
        blob = self.blob()

        def progress(count: int) -> None:
            self.ctx.metrics.uploaded(self.job.dataset, count)
            if self._on_progress is not None:
                self._on_progress(count)

        result = await upload_blob(
            self.client,
            self.source,
            blob,
            content_type=content_type_for(blob.name),
            global_limit=self.ctx.chunk_limit,
            on_progress=progress,
            journal=StoreJournal(self.ctx.store, self.job.id, self.source.id, blob),
            resume=resume,
        )
        self.source = result.source  # as the commit answered: the first poll of processing
        details: dict[str, object] = {"chunks": result.chunks, "bytes": result.bytes_sent}
        if resume is not None:
            details["chunks_already_acknowledged"] = result.skipped_chunks
        if processing_done(result.source):
            # Only reads come before the schemas are recorded: a crash before then
            # leaves the job UPLOADING, which resumes by reading the committed source.
            self._uploaded = details
        else:
            await self.to(JobState.PROCESSING, details, synced=False)
        if result.journaled or resume is not None:
            await self.ctx.store.forget_upload(self.job.id)
        self.ctx.metrics.phase("upload", time.monotonic() - began)

    async def upload_committed(self, source: Source) -> None:
        self.source = source
        await self.to(JobState.PROCESSING, {"recovered": "the upload was committed"})
        await self.ctx.store.forget_upload(self.job.id)

    async def process_and_apply(self) -> Job:
        """Wait for processing, then ``check_and_apply``; a replace's row count is asked
        meanwhile (``replace_check``)."""
        counting = replace_check.count_rows_early(self)
        try:
            return await self.check_and_apply(await self._process(), counting)
        finally:
            if counting is not None:
                counting.cancel()  # a no-op once awaited; a refusal may come first

    async def _process(self) -> Processed:
        assert self.source is not None
        began = time.monotonic()
        processed = await wait_for_processing(self.client, self.source)
        await self.record_processed(processed)
        self.ctx.metrics.phase("processing", time.monotonic() - began)
        return processed

    async def record_processed(self, processed: Processed) -> None:
        """Write the output schema and the rows in error (parse and data errors, summed)."""
        uploaded, self._uploaded = self._uploaded, {}
        # Unsynced: lost, the job is UPLOADING, which reads the committed source again.
        await self.to(
            JobState.PROCESSING,
            {
                **uploaded,
                "total_rows": processed.schema.total_rows,
                "parse_error_count": processed.parse_error_count,
                "data_error_count": processed.schema.error_count,
            },
            output_schema_id=processed.schema.id,
            error_count=processed.error_count,
            synced=False,
        )

    async def check_and_apply(
        self, processed: Processed, current_rows: Awaitable[int] | None = None
    ) -> Job:
        """Row-error threshold, replace guards, then apply (or, in a dry run, stop).

        ``current_rows``: the dataset's row count for a replace's guard, already asked
        for; counted here when not given."""
        assert self.revision is not None
        assert self.source is not None
        schema = processed.schema
        if processed.error_count > self.mapping.max_error_rows:
            raise Quarantine(
                "too_many_row_errors",
                threshold_message(processed, self.mapping.max_error_rows),
                error_rows=await data_error_rows(self.client, processed, self.source.id),
                parse_errors=await parse_error_rows(self.client, processed, self.source),
                parse_error_count=processed.parse_error_count,
            )
        await replace_check.check_replace(self, processed, current_rows)
        if self.dry_run:
            return await outcomes.would_apply(self, processed)
        if self.mapping.publish == "stage" and self.job.state is not JobState.APPLYING:
            # A staged job reaches APPLYING only through ``dsmsyncd apply``.
            return await staging.stage(self)
        await self.to(JobState.APPLYING)
        try:
            task_set = await self.client.apply(self.revision, schema.id)
        except OutcomeUnknown as unknown:
            task_set = await resume.apply_outcome(self, unknown)
        if task_set.id is not None and not task_set.is_terminal:
            # An apply answered done is recorded with its outcome (``follow``): a crash
            # before then (or a power loss: unsynced) leaves APPLYING, which follows the
            # revision's apply job.
            await self.to(JobState.APPLYING, task_set_id=int(task_set.id), synced=False)
        return await self.follow(task_set)

    async def follow(self, task_set: TaskSet) -> Job:
        """Wait for the apply job; its outcome is the job's outcome."""
        assert self.revision is not None
        began = time.monotonic()
        final = await self.client.wait_for_task_set(self.revision, task_set)
        self.ctx.metrics.phase("apply", time.monotonic() - began)
        counts = outcomes.applied_row_counts(final.log)
        fields: JobUpdate = {} if final.id is None else {"task_set_id": int(final.id)}
        if final.status == "successful":
            details = {"task_set_status": final.status, **counts}
            fields["error"] = None
            await self.to(JobState.PUBLISHED, details, **fields)
            return await outcomes.succeeded(self, "published")
        if final.status == "submitted_for_approval":
            details = {"task_set_status": final.status}
            await self.to(JobState.AWAITING_APPROVAL, details, **fields)
            return await outcomes.succeeded(self, "awaiting_approval")
        message = next(
            (
                str(entry["details"]["message"])
                for entry in final.log
                if isinstance(entry.get("details"), dict) and entry["details"].get("message")
            ),
            f"the apply job ended with status {final.status!r}",
        )
        raise Quarantine(
            "apply_failed",
            f"applying revision {self.revision.seq} of {self.job.dataset} failed: {message}",
        )
