"""The state store interface: what the pipeline, scheduler and admin page need of it.

Errors, branching on how the caller reacts::

    StateStoreError          the store cannot be used (not open, unreadable, too new)
    ├── SchemaTooNew         the database was written by a newer dsmsyncd: upgrade
    ├── UnknownJob           no job with that id
    ├── StaleTransition      the job was not in the expected state: re-read, do not act
    └── LaneLost             another replica holds the job's lane now: stop, it resumes it

Every write is committed before the call returns and is not torn by cancellation,
because the pipeline performs its next side effect (create a revision, apply) only
after the step is on disk (DESIGN.md invariant 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from enum import Enum
from typing import Protocol, Self, Unpack

from dsmsyncd.state.lanes import ClusterView, LaneClaim, ReplicaIdentity
from dsmsyncd.state.model import (
    ChunkRecord,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    NewJob,
    UploadPlan,
    UploadProgress,
)


class StoreStatus(Enum):
    UNOPENED = 1  # Built, no connection yet: ``open()`` is allowed once.
    OPENED = 2  # Connected and migrated: every method may be called.
    CLOSED = 3  # Closed: refuses further use and cannot be reopened (build a new one).


class StateStoreError(Exception):
    """The state store cannot do what was asked."""


class SchemaTooNew(StateStoreError):
    def __init__(self, location: str, found: int, known: int) -> None:
        super().__init__(
            f"state database {location} has schema version {found}, but this dsmsyncd knows "
            f"versions up to {known}: upgrade dsmsyncd, or point [state] url at another database"
        )
        self.found = found
        self.known = known


class UnknownJob(StateStoreError, LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"no job with id {job_id}")
        self.job_id = job_id


class StaleTransition(StateStoreError):
    """Compare-and-set failed: someone else moved the job first, so this caller must not act."""

    def __init__(
        self, job_id: int, target: JobState, expected: AbstractSet[JobState], actual: JobState
    ) -> None:
        wanted = ", ".join(sorted(expected))
        super().__init__(
            f"job {job_id}: cannot move to {target}: expected state in {{{wanted}}}, found {actual}"
        )
        self.job_id = job_id
        self.target = target
        self.expected = expected
        self.actual = actual

    def __repr__(self) -> str:
        return f"StaleTransition(job_id={self.job_id}, target={self.target}, actual={self.actual})"


class LaneLost(StateStoreError):
    """This replica's lease on a lane ended and another replica holds it: the job must not
    be moved by this one (the holder resumes it, as a restart would)."""

    def __init__(self, dataset: str, holder: str | None, job_id: int | None = None) -> None:
        who = f"replica {holder}" if holder else "no replica"
        what = f"job {job_id}: " if job_id is not None else ""
        super().__init__(
            f"{what}the lease on dataset {dataset}'s lane ended and {who} holds it now: "
            "this replica stops the job there, and the holder resumes it"
        )
        self.dataset = dataset
        self.holder = holder
        self.job_id = job_id


class StateStore(Protocol):
    """Durable record of every file and every step of its job.

    Times are timezone-aware; a naive datetime is refused with ``ValueError``.
    """

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Wait for writes in flight to commit, then release the database."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def add_job(
        self,
        *,
        source: str,
        relative_path: str,
        identity: str,
        size: int,
        mtime: datetime,
        dataset: str,
        mapping_index: int,
        content_sha256: str | None = None,
        routing: Mapping[str, object] | None = None,
    ) -> Job | None:
        """Record a newly discovered file as a DISCOVERED job, with the mapping it was
        routed with (``routing``, JSON-able) so that a reload cannot reroute it.

        Returns None when ``(source, identity)`` is already known: a file seen again by a
        rescan, or by a second replica, must not become a second job.
        """
        ...

    async def add_jobs(self, jobs: Sequence[NewJob]) -> list[Job | None]:
        """``add_job`` for each of ``jobs``, in order, in ONE transaction (one commit, one
        sync to disk for the lot): a discovery pass over a folder of thousands of files
        records them at the cost of one write. Same result per job as ``add_job`` (None:
        known already); all or none are recorded.
        """
        ...

    async def get_job(self, job_id: int) -> Job:
        """Raises UnknownJob."""
        ...

    async def transition(
        self,
        job_id: int,
        new_state: JobState,
        *,
        expect: JobState | AbstractSet[JobState],
        details: Mapping[str, object] | None = None,
        synced: bool = True,
        **fields: Unpack[JobUpdate],
    ) -> Job:
        """Move a job to ``new_state`` if it is in ``expect``, write ``fields``, log an event.

        Committed before it returns: a kill -9 after it keeps it. ``synced`` (the
        default) also has it on disk, so that a power loss keeps it; ``synced=False``
        lets the store skip waiting for the disk, for a step whose loss recovery
        rebuilds from the server (SQLite does, PostgreSQL syncs anyway). A later synced
        commit makes it durable too. Raises StaleTransition when the job is elsewhere,
        UnknownJob when there is no such job.
        """
        ...

    async def next_runnable(self, dataset: str, now: datetime) -> Job | None:
        """The head of the dataset's lane (HELD jobs are not in it), if it may run at
        ``now`` (``lanes.head_may_run``: not backing off; a STAGED head only when the
        job behind it supersedes it); else None."""
        ...

    async def unfinished_jobs(self) -> list[Job]:
        """Every job not in a terminal state (HELD ones too), in lane order."""
        ...

    async def datasets_with_work(self, now: datetime) -> list[str]:
        """Datasets whose ``next_runnable`` would return a job at ``now``, oldest head first."""
        ...

    async def recent_jobs(self, limit: int, dataset: str | None = None) -> list[Job]:
        """Most recently updated first (for the status page)."""
        ...

    async def events(self, job_id: int) -> list[JobEvent]:
        """The job's history, oldest first."""
        ...

    async def find_published_hash(self, dataset: str, sha256: str) -> Job | None:
        """The dataset's latest PUBLISHED job, if its content has this hash; else None."""
        ...

    async def is_known(self, source: str, identity: str) -> bool: ...

    async def counts_by_state(self) -> dict[JobState, int]:
        """Every state, with 0 where there are no jobs (so gauges do not go stale)."""
        ...

    # -- the upload journal: what a restarted job needs to resume its upload ----------

    async def begin_upload(self, job_id: int, plan: UploadPlan) -> None:
        """Record the job's upload plan, forgetting any earlier upload of the job and
        its chunks. Committed before it returns, like every write."""
        ...

    async def record_chunk(self, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
        """Record a chunk the server has acknowledged (never before its answer came).

        Ignored unless the job's recorded upload is to ``source_id``: a chunk of an
        upload that was started over since must not count for the new one.
        """
        ...

    async def upload_progress(self, job_id: int) -> UploadProgress | None:
        """The job's recorded upload and its acknowledged chunks by seq, or None."""
        ...

    async def forget_upload(self, job_id: int) -> None:
        """Drop the job's upload record (committed, or started over)."""
        ...

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query (for /readyz)."""
        ...

    # -- replicas and lanes (lanes.py): only a daemon's store, opened with a replica ---

    @property
    def replica(self) -> ReplicaIdentity | None:
        """Who this store works as; None for read-only users (``status``)."""
        ...

    async def claim_lane(self, dataset: str, now: datetime) -> LaneClaim | None:
        """Hold the dataset's lane under a lease, or None while another live replica
        holds it. A lane this store holds already is renewed, not taken over."""
        ...

    async def claim_next(self, dataset: str, now: datetime) -> Job | None:
        """The head of a lane this store holds, row-locked for the claim (``SKIP LOCKED``)
        and named in the lease, if it may run at ``now``; else None. Raises LaneLost when
        the lease is no longer this store's."""
        ...

    async def release_lane(self, dataset: str, *, finished: bool) -> None:
        """Give the lane up: deleted when its run ``finished``; otherwise (cancelled,
        crashed) ended at once, so that the next holder finishes what was left."""
        ...

    async def renew_lanes(self, now: datetime) -> set[str]:
        """Extend every lease this store holds (and its replica's heartbeat); the lanes
        still held. A lane missing from the answer was lost: stop its job."""
        ...

    async def orphaned_lanes(self, now: datetime) -> list[str]:
        """Lanes whose lease ended without being given up: a replica died in them."""
        ...

    async def cluster(self) -> ClusterView:
        """Every replica seen lately and every lease, for ``/status`` and ``status``."""
        ...

    async def watch_work(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` whenever any replica records new work or gives a lane up, until
        cancelled; returns at once where there are no other replicas to hear from
        (SQLite). Raises StateStoreError when the notification channel breaks."""
        ...
