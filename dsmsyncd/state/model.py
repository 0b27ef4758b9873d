"""What the state store records: one SyncJob per dropped file, and its history.

A job's state is written *before* each side effect and what the server returned is
written right after (DESIGN.md, "Recovery: how never twice is kept"), so after a
crash the row alone says which step may have happened and what to look up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict


class JobState(StrEnum):
    """The SyncJob state machine; values are what the database and the status page show."""

    # The file was seen, passed the stability gate, matched a mapping, and is queued.
    DISCOVERED = "discovered"
    # About to create the revision: a crash here may leave an orphan revision to find.
    OPENING = "opening"
    # Revision and upload source recorded; chunks are being sent.
    UPLOADING = "uploading"
    # Upload committed; waiting for the output schema and its row-error count.
    PROCESSING = "processing"
    # Apply is about to be, or was, sent: the one step that changes the dataset.
    APPLYING = "applying"
    # The task set succeeded: the file is on the dataset.
    PUBLISHED = "published"
    # Applied, but the dataset needs a human's approval; nothing more for us to do.
    AWAITING_APPROVAL = "awaiting_approval"
    # Rejected (bad file, too many row errors, refused): moved aside with a report.
    QUARANTINED = "quarantined"
    # Same content as the dataset's last published file: nothing to send.
    SKIPPED = "skipped"
    # The job's revision was discarded so that the job can start over.
    DISCARDED = "discarded"
    # A transient failure; the job runs again once ``next_attempt_at`` has passed.
    FAILED_RETRYABLE = "failed_retryable"
    # ``publish = "stage"``: uploaded, transformed and checked; its revision is left open
    # for an operator to read, then ``dsmsyncd apply`` (APPLYING) or ``discard``
    # (QUARANTINED). It heads its lane and blocks it: the daemon never resumes it, and
    # runs it only to supersede it (``on_staged = "supersede"`` on the job behind it).
    STAGED = "staged"
    # Parked: no [[mapping]] for the job's source and dataset exists any more. It blocks
    # no lane, and becomes DISCOVERED again when such a mapping is back (reload, restart).
    HELD = "held"


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {
        JobState.PUBLISHED,
        JobState.AWAITING_APPROVAL,
        JobState.QUARANTINED,
        JobState.SKIPPED,
    }
)
"""States the daemon never leaves on its own. Every other state is resumed after a
restart, except HELD (until a mapping is back) and STAGED (until an operator's
``apply`` or ``discard``, or a newer file that supersedes it)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Job:
    """One file's journey to its dataset, as last committed to the store."""

    id: int
    source: str
    relative_path: str
    # Changes whenever the content may have changed: path + size + mtime, or key + ETag.
    identity: str
    content_sha256: str | None
    size: int
    # The file's mtime (or object's LastModified): with the path, it orders a dataset's lane.
    mtime: datetime
    dataset: str
    # The mapping's position in the config at discovery: informational only (a reload
    # may reorder the tables). ``routing`` is what the job runs with.
    mapping_index: int
    state: JobState
    attempts: int
    revision_seq: int | None
    revision_id: int | None
    source_id: int | None
    output_schema_id: int | None
    task_set_id: int | None
    error: str | None
    # Rows the output schema reported in error: compared with the mapping's threshold.
    error_count: int
    discovered_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # Retry backoff: the job is not runnable before this time.
    next_attempt_at: datetime | None
    # The routing-relevant settings of the mapping that took the file, as discovered
    # (dataset, action or import config, guards, where the file goes): a JSON object,
    # or None for a job recorded before schema 2.
    routing: dict[str, Any] | None = None
    # Attempts that failed because the file could not be opened or read.
    read_failures: int = 0

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True)
class NewJob:
    """A file to record as a DISCOVERED job: what ``add_job`` takes, as one value so that
    a discovery pass can record many in one transaction (``add_jobs``)."""

    source: str
    relative_path: str
    identity: str
    size: int
    mtime: datetime
    dataset: str
    mapping_index: int
    content_sha256: str | None = None
    routing: Mapping[str, object] | None = None


class JobUpdate(TypedDict, total=False):
    """The fields a transition may write alongside the new state."""

    content_sha256: str | None
    attempts: int
    revision_seq: int | None
    revision_id: int | None
    source_id: int | None
    output_schema_id: int | None
    task_set_id: int | None
    error: str | None
    error_count: int
    started_at: datetime | None
    finished_at: datetime | None
    next_attempt_at: datetime | None
    read_failures: int


UPDATABLE_FIELDS: frozenset[str] = frozenset(JobUpdate.__annotations__)


@dataclass(frozen=True)
class JobEvent:
    """One transition in a job's history: what it became, from what, and what was written."""

    id: int
    job_id: int
    at: datetime
    state: JobState
    previous_state: JobState | None
    details: dict[str, Any]


@dataclass(frozen=True)
class ChunkRecord:
    """One upload chunk the server acknowledged, and the BLAKE2b-128 (hex) of its bytes.

    A resumed upload re-reads these bytes and compares digests before trusting that the
    server already has them: a file rewritten in place under the same size and mtime
    must start over, not mix two versions in one upload.
    """

    seq: int
    offset: int
    length: int
    digest: str


@dataclass(frozen=True)
class UploadPlan:
    """How a job's upload to one source is cut: what a resumed upload must cut alike.

    ``identity`` is the blob's (path + size + mtime, or key + ETag): the version the
    recorded chunks were read from. ``chunk_size`` is fixed by the first ``initiate``.
    """

    source_id: int
    identity: str
    size: int
    chunk_size: int


@dataclass(frozen=True)
class UploadProgress:
    """A job's recorded upload: its plan and the chunks acknowledged so far, by seq."""

    plan: UploadPlan
    chunks: tuple[ChunkRecord, ...]

    @property
    def acknowledged_bytes(self) -> int:
        return sum(chunk.length for chunk in self.chunks)
