"""Finish what a crash interrupted after the outcome: moving the file.

A job's outcome (published, awaiting approval, quarantined) is recorded before its
file is moved, and where the file went is recorded after. A crash between the two
leaves the file in the source: never published twice (its identity is known), but
never archived or quarantined either. At startup the daemon looks at recently
finished jobs without a "where the file went" record and finalizes them now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.daemon.job_routing import recorded_mapping
from dsmsyncd.finalize.folder import Finalizer, QuarantineReport, ReportedFile
from dsmsyncd.state import Job, JobState, StateStore

logger = logging.getLogger("dsmsyncd.finalize.sweep")

SWEPT_STATES = frozenset({JobState.PUBLISHED, JobState.AWAITING_APPROVAL, JobState.QUARANTINED})
RECENT_JOBS = 500


async def finalize_leftovers(
    store: StateStore,
    mappings: Sequence[MappingConfig],
    finalizer_for: Callable[[Job], Finalizer],
    *,
    known_sources: set[str],
    limit: int = RECENT_JOBS,
) -> int:
    """Finalize finished jobs whose file was never moved; returns how many."""
    swept = 0
    for job in await store.recent_jobs(limit):
        if job.state not in SWEPT_STATES or job.source not in known_sources:
            continue
        mapping = recorded_mapping(job, mappings)
        if mapping is None:
            continue
        events = await store.events(job.id)
        if any("file" in (event.details or {}) for event in events if event.state is job.state):
            continue
        finalizer = finalizer_for(job)
        try:
            if job.state is JobState.QUARANTINED:
                reason = next(
                    (str(e.details["reason"]) for e in reversed(events) if "reason" in e.details),
                    "rejected_by_server",
                )
                report = QuarantineReport(
                    reason=reason,  # type: ignore[arg-type]  # recorded from the same set
                    message=job.error or "quarantined before a crash; see the job's history",
                    dataset=job.dataset,
                    file=ReportedFile(job.relative_path, job.size, job.content_sha256, job.source),
                    revision_seq=job.revision_seq,
                    revision_id=job.revision_id,
                    error_count=job.error_count or 0,
                    discovered_at=job.discovered_at,
                    started_at=job.started_at,
                )
                where = await finalizer.quarantine(job, mapping, report)
            else:
                where = await finalizer.succeeded(job, mapping)
        except OSError as exc:
            logger.error("could not finalize %s after a restart: %s", job.relative_path, exc)
            where = f"left in place: {exc}"
        await store.transition(
            job.id,
            job.state,
            expect=job.state,
            details={"file": where, "after_restart": True},
            finished_at=job.finished_at,
        )
        logger.info("finalized %s after a restart: %s", job.relative_path, where)
        swept += 1
    return swept
