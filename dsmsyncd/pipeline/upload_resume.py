"""Resumable uploads: record each acknowledged chunk, and after an interruption send
only the chunks the server does not have yet.

Recording (``StoreJournal``): the upload's plan (source, blob identity, size, chunk
size) is written before its first chunk, and each chunk (seq, offset, length, BLAKE2b
of its bytes) right *after* the server acknowledged it. So a chunk recorded is a chunk
the server has; one acknowledged but not recorded when the daemon died is sent again,
which the protocol makes harmless (a resent chunk replaces itself, digest §3d).

Resuming (``resume_upload``), for a job whose source is recorded but whose output
schema is not, after a restart or a failed attempt (a connection lost for longer than
the per-chunk retries):

* the server no longer has the source (404/410), or it stopped (``failed_at``)
  -> start over (``source_gone``);
* the source has its bytes already (committed before the crash) -> nothing to send;
* the blob's identity is not the one the chunks were read from -> start over
  (``content_changed``); the reads of a changed file or object normally fail before
  that, with ``BlobChanged``, and the new version runs as a job of its own;
* the recorded chunks are re-read and their digests compared -> start over
  (``content_changed``) on the first mismatch: a file rewritten in place with its
  size and mtime kept must not be finished with bytes of another version. Every
  recorded chunk of a local file is checked (read at disk speed, far cheaper than the
  network); an object read with ``If-Match: <ETag>`` is pinned to its version by the
  store itself, so its first and last recorded chunks are checked, not a re-download;
* otherwise the missing chunks are sent with the first attempt's chunk size, then the
  commit. A commit the server refuses (it lost chunks it had acknowledged) -> start
  over (``chunks_lost``).

Where the revision itself is gone (discarded, or a server restarted without it),
``resume.py`` starts over through ``restart`` here (``revision_gone``). Every start
over is a WARNING log line and ``dsmsyncd_upload_restarts_total{reason}``; every
resume is ``dsmsyncd_upload_resumes_total`` and ``..._resumed_bytes_total``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from dsmsyncd.blob import Blob
from dsmsyncd.dsmapi import RejectedError, Source
from dsmsyncd.observe.metrics import UploadRestart
from dsmsyncd.pipeline.context import JOB_LOGGER_NAME, RunningJob
from dsmsyncd.pipeline.upload import ResumePoint, chunk_digest
from dsmsyncd.state import ChunkRecord, Job, StateStore, UploadPlan, UploadProgress

logger = logging.getLogger(JOB_LOGGER_NAME)

# What the server answers for a source it no longer has, or an upload it will not finish.
_GONE = frozenset({404, 410})
_REFUSED = frozenset({400, 404, 409, 410})


class StoreJournal:
    """``upload.UploadJournal`` on the state store, for one job's upload to one source."""

    def __init__(self, store: StateStore, job_id: int, source_id: int, blob: Blob) -> None:
        self._store = store
        self._job_id = job_id
        self._source_id = source_id
        self._blob = blob

    async def planned(self, chunk_size: int) -> None:
        plan = UploadPlan(self._source_id, self._blob.identity, self._blob.size, chunk_size)
        await self._store.begin_upload(self._job_id, plan)

    async def acknowledged(self, chunk: ChunkRecord) -> None:
        await self._store.record_chunk(self._job_id, self._source_id, chunk)


@dataclass(frozen=True)
class StartOver:
    reason: UploadRestart
    message: str


@dataclass(frozen=True)
class Resumable:
    source: Source
    point: ResumePoint
    # The server has every byte already (the commit went through before the crash).
    committed: bool
    skipped_bytes: int


async def restart(run: RunningJob, reason: UploadRestart, why: str, *, discard: bool) -> None:
    """Start the job's upload over from the first byte, and say so (log and metric)."""
    logger.warning("the upload cannot resume (%s): %s; starting over", reason, why)
    run.ctx.metrics.upload_restarted(run.job.dataset, reason)
    await run.start_over(why, discard=discard)


async def resume_upload(run: RunningJob) -> Job | None:
    """Finish the job's interrupted upload and go on to apply; None: it started over."""
    verdict = await examine(run)
    if isinstance(verdict, StartOver):
        await restart(run, verdict.reason, verdict.message, discard=True)
        return None
    run.source = verdict.source
    run.ctx.metrics.upload_resumed(run.job.dataset, verdict.skipped_bytes)
    logger.info(
        "recovery: resuming the upload to source %s: %d of %d bytes already acknowledged",
        verdict.source.id,
        verdict.skipped_bytes,
        run.blob().size,
    )
    if verdict.committed:
        await run.upload_committed(verdict.source)
    else:
        try:
            await run.upload(verdict.point)
        except RejectedError as exc:
            if exc.status not in _REFUSED:
                raise
            why = f"the server refused the resumed upload: {exc.server_message}"
            await restart(run, "chunks_lost", why, discard=True)
            return None
    return await run.process_and_apply()


async def examine(run: RunningJob) -> StartOver | Resumable:
    """Whether the job's recorded upload can be finished, and from where."""
    job = run.job
    assert job.source_id is not None
    try:
        source = await run.client.get_source(job.source_id)
    except RejectedError as exc:
        if exc.status not in _GONE:
            raise
        return StartOver("source_gone", f"the server no longer has source {job.source_id}")
    if source.failed_at is not None:
        return StartOver("source_gone", f"source {source.id} has stopped on the server")
    if source.finished_at is not None or source.schemas:
        return Resumable(source, ResumePoint(None), committed=True, skipped_bytes=run.blob().size)
    progress = await run.ctx.store.upload_progress(job.id)
    if progress is None or progress.plan.source_id != source.id:
        return Resumable(source, ResumePoint(None), committed=False, skipped_bytes=0)
    changed = await changed_since(run.blob(), progress)
    if changed is not None:
        return StartOver("content_changed", changed)
    point = ResumePoint(progress.plan.chunk_size, frozenset(c.seq for c in progress.chunks))
    return Resumable(source, point, committed=False, skipped_bytes=progress.acknowledged_bytes)


async def changed_since(blob: Blob, progress: UploadProgress) -> str | None:
    """Why the blob's bytes are not those the recorded chunks were read from, or None."""
    if blob.identity != progress.plan.identity:
        return (
            f"the file is now {blob.identity}, the chunks were read from {progress.plan.identity}"
        )
    chunks = progress.chunks
    if blob.version_pinned and len(chunks) > 2:
        chunks = (chunks[0], chunks[-1])
    for chunk in chunks:
        data = await blob.read_range(chunk.offset, chunk.length)
        if await asyncio.to_thread(chunk_digest, data) != chunk.digest:
            return (
                f"bytes {chunk.offset}-{chunk.offset + chunk.length} (chunk {chunk.seq}) of "
                f"{blob.name} differ from those the server acknowledged: rewritten in place"
            )
    return None
