"""Finish what a crash interrupted after the outcome: moving the file.

A job's outcome (published, awaiting approval, quarantined) is recorded before its
file is moved, and where the file went is recorded after. A crash between the two
leaves the file in the source: never published twice (its identity is known), but
never archived or quarantined either. At startup the daemon looks at recently
finished jobs without a "where the file went" record, and finalizes them under their
dataset's lane lease (so that of several replicas only the lane's holder moves a
file); a replica taking over a dead replica's lane does the same for that dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.base import Finalizer
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.pipeline.job_routing import recorded_mapping
from dsmsyncd.state import Job, JobEvent, JobState, StateStore

logger = logging.getLogger("dsmsyncd.pipeline.sweep")

SWEPT_STATES = frozenset({JobState.PUBLISHED, JobState.AWAITING_APPROVAL, JobState.QUARANTINED})
RECENT_JOBS = 500


async def leftover_datasets(
    store: StateStore, *, known_sources: set[str], limit: int = RECENT_JOBS
) -> set[str]:
    """Datasets with a recently finished job whose file was never moved."""
    return {job.dataset for job, _events in await _leftovers(store, known_sources, limit)}


async def finalize_leftovers(
    store: StateStore,
    mappings: Sequence[MappingConfig],
    finalizer_for: Callable[[Job], Finalizer],
    *,
    known_sources: set[str],
    dataset: str | None = None,
    limit: int = RECENT_JOBS,
) -> int:
    """Finalize finished jobs (of ``dataset``, or all) whose file was never moved; how many.

    With replicas, call it only under the dataset's lane lease."""
    swept = 0
    for job, events in await _leftovers(store, known_sources, limit, dataset):
        mapping = recorded_mapping(job, mappings)
        if mapping is None:
            continue
        where = await _finalize(job, events, mapping, finalizer_for(job))
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


async def _leftovers(
    store: StateStore, known_sources: set[str], limit: int, dataset: str | None = None
) -> list[tuple[Job, list[JobEvent]]]:
    found = []
    for job in await store.recent_jobs(limit, dataset):
        if job.state not in SWEPT_STATES or job.source not in known_sources:
            continue
        events = await store.events(job.id)
        if not any("file" in (event.details or {}) for event in events if event.state is job.state):
            found.append((job, events))
    return found


async def _finalize(
    job: Job, events: Sequence[JobEvent], mapping: MappingConfig, finalizer: Finalizer
) -> str:
    """Move the file as the job's recorded outcome says; where it went (or why it stayed)."""
    try:
        if job.state is not JobState.QUARANTINED:
            return await finalizer.succeeded(job, mapping)
        reason = next(
            (str(e.details["reason"]) for e in reversed(events) if "reason" in e.details),
            "rejected_by_server",
        )
        report = QuarantineReport.of_job(
            job,
            reason,  # type: ignore[arg-type]  # recorded from the same set
            job.error or "quarantined before a crash; see the job's history",
            sha256=job.content_sha256,
        )
        return await finalizer.quarantine(job, mapping, report)
    except OSError as exc:
        logger.error("could not finalize %s after a restart: %s", job.relative_path, exc)
        return f"left in place: {exc}"
