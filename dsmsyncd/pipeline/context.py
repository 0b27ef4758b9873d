"""What every job of the pipeline shares, and the view recovery takes of one running job.

``PipelineContext`` holds the resources the daemon (or ``push``) builds once;
``TargetAccount`` what the pipeline learns of the target once for all jobs.
``RunningJob`` is the narrow view that ``resume`` and ``outcomes`` take of a job's run:
they need its row, its revision and a few of its steps, and depend on this protocol
rather than on the forward path (``sync_job.JobRun``) that calls them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Unpack

from dsmsyncd.blob import Blob
from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.dsmapi import AuthError, DsmapiClient, Revision, Source, TaskSet
from dsmsyncd.finalize.base import Finalizer
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.row_errors import Processed
from dsmsyncd.pipeline.upload import ResumePoint
from dsmsyncd.state import Job, JobState, JobUpdate, StateStore, utc_now

# A job's story is told under one logger name, whichever module of the pipeline writes
# the line: operators (and tests) follow a job by it.
JOB_LOGGER_NAME = "dsmsyncd.pipeline.sync_job"
logger = logging.getLogger(JOB_LOGGER_NAME)

DRY_RUN_SAMPLE_ROWS = 10
# What a job forgets when its revision is discarded: the next attempt starts afresh.
CLEARED_IDS: JobUpdate = {
    "revision_seq": None,
    "revision_id": None,
    "source_id": None,
    "output_schema_id": None,
    "task_set_id": None,
    "error_count": 0,
}


@dataclass(frozen=True)
class PipelineContext:
    """The shared resources every job uses, built once by the daemon."""

    client: DsmapiClient
    store: StateStore
    metrics: Metrics
    mappings: Sequence[MappingConfig]
    open_blob: Callable[[Job], Blob]
    finalizer_for: Callable[[Job], Finalizer]
    chunk_limit: asyncio.Semaphore
    retry_base_s: float = 5.0
    retry_max_s: float = 900.0
    # Attempts that may fail to read the file before it is quarantined (file_unreadable).
    max_read_attempts: int = 5
    # How far before a job's start a revision may have been stamped by the server's
    # clock and still count as possibly this job's orphan.
    orphan_skew_s: float = 120.0
    clock: Callable[[], datetime] = utc_now
    # A file beside a job's (its metadata sidecar), with the identity discovery records
    # it under; FileNotFoundError if there is none. None: sidecars are not looked for.
    open_beside: Callable[[Job, str], tuple[Blob, str]] | None = None


@dataclass(frozen=True)
class PairedSidecar:
    """The metadata sidecar a data job publishes with: ``job`` is the data job's row with
    the sidecar's path and identity (what its finalizer moves), ``metadata`` what it sets."""

    job: Job
    metadata: dict[str, Any]


class TargetAccount:
    """Our user on the target, as all jobs see it: its id (what ``created_by`` shows on
    the revisions we open) and whether the target refuses its credentials now."""

    def __init__(self, client: DsmapiClient) -> None:
        self._client = client
        self._user_id: str | None = None
        self._refused = False

    async def user_id(self) -> str:
        """Our user's id on the server, as revisions show it in ``created_by``."""
        if self._user_id is None:
            self._user_id = str((await self._client.current_user())["id"])
        return self._user_id

    def refused(self, exc: AuthError) -> None:
        """Say once per episode that the target refuses us; every job waits and retries."""
        if self._refused:
            logger.debug("still refused: %s", exc)
            return
        self._refused = True
        logger.error(
            "the target refuses our credentials or permission (HTTP %d: %s); jobs wait and "
            "retry with backoff until it accepts them: check [target] username/password or "
            "token, and the user's rights to the datasets",
            exc.status,
            exc.server_message,
        )

    def accepted(self) -> None:
        """A request that needs our credentials succeeded: end a refusal episode."""
        if self._refused:
            self._refused = False
            logger.info("the target accepts our credentials again; waiting jobs resume")


class RunningJob(Protocol):
    """One attempt at one job, as recovery and the outcomes use it (``sync_job.JobRun``)."""

    revision: Revision | None
    source: Source | None
    sidecar: PairedSidecar | None

    @property
    def job(self) -> Job:
        """The job's row as last committed."""
        ...

    @property
    def ctx(self) -> PipelineContext: ...

    @property
    def client(self) -> DsmapiClient: ...

    @property
    def account(self) -> TargetAccount: ...

    @property
    def dry_run(self) -> bool: ...

    @property
    def mapping(self) -> MappingConfig: ...

    async def to(
        self,
        state: JobState,
        details: dict[str, object] | None = None,
        *,
        synced: bool = True,
        **fields: Unpack[JobUpdate],
    ) -> Job:
        """Record a step, committed on return (on disk too unless ``synced=False``)."""
        ...

    async def content_sha(self) -> str | None: ...

    def blob(self) -> Blob:
        """The job's bytes, opened once per run."""
        ...

    async def upload(self, resume: ResumePoint | None = None) -> None:
        """Send the chunks (all, or those not in ``resume``) and commit: PROCESSING."""
        ...

    async def upload_committed(self, source: Source) -> None:
        """The server had every byte already: record PROCESSING as ``upload`` would."""
        ...

    async def process_and_apply(self) -> Job:
        """Wait for the output schema, then ``check_and_apply``."""
        ...

    async def start_over(self, why: str, *, discard: bool) -> None: ...

    async def record_processed(self, processed: Processed) -> None: ...

    async def check_and_apply(self, processed: Processed) -> Job: ...

    async def follow(self, task_set: TaskSet) -> Job: ...
