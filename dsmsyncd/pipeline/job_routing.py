"""Which mapping a queued job runs with, and what happens when the mappings change.

A job carries a snapshot of the mapping that took its file (``Job.routing``): the
dataset, the action or import config, the guards and where the file goes. A job
used to carry the mapping's *index* instead, so a reload that reordered the
``[[mapping]]`` tables sent queued files to another mapping's action (three updates
became replaces and wiped a dataset), and one that removed a mapping crashed its
lane for good (issue 11).

The rule, chosen for an operator who edits the config while files wait:

* A job runs with the routing it was discovered with, as long as the configuration
  still has a mapping from the job's source to the job's dataset. Editing that
  mapping (say update → replace) applies to files discovered afterwards: a file is
  published the way it was routed when it arrived.
* When no mapping from that source to that dataset is left, the job is **held**
  (``JobState.HELD``, reason ``mapping_removed``): its open revision, if any, is
  discarded, it blocks no lane, and it is logged once. It resumes by itself when a
  mapping for that source and dataset comes back (reload or restart). A job whose
  apply may already have been sent (``APPLYING``) is never held: it is followed to
  its end with its snapshot, since only that says truthfully what happened. Nor is a
  STAGED one: its revision waits for an operator's ``apply`` or ``discard``.
* A job recorded before the snapshot existed (a state database from before schema 2)
  runs with the mapping that routes its file today, if that mapping goes to the job's
  dataset; otherwise it is held the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.pipeline.routing import route
from dsmsyncd.state import Job, JobState, StaleTransition, StateStore

logger = logging.getLogger("dsmsyncd.pipeline.job_routing")

HELD_REASON = "mapping_removed"


def routing_snapshot(mapping: MappingConfig) -> dict[str, Any]:
    """What a job stores of its mapping: every setting, as JSON."""
    return mapping.model_dump(mode="json")


def job_mapping(
    job: Job, mappings: Sequence[MappingConfig]
) -> tuple[MappingConfig | None, str | None]:
    """(the mapping ``job`` runs with, None) or (None, why it must be held)."""
    recorded = recorded_mapping(job, mappings)
    if recorded is None:
        return None, (
            f"no [[mapping]] routes {job.source}:{job.relative_path} to dataset "
            f"{job.dataset} any more (the job predates routing snapshots)"
        )
    if job.state in (JobState.APPLYING, JobState.STAGED) or still_mapped(job, mappings):
        return recorded, None
    return None, (
        f"no [[mapping]] from source {job.source!r} to dataset {job.dataset} is configured any more"
    )


def recorded_mapping(job: Job, mappings: Sequence[MappingConfig]) -> MappingConfig | None:
    """The job's routing snapshot; for a job from before snapshots, the mapping that
    routes its file today if it goes to the same dataset; else None."""
    snapshot = _snapshot(job)
    if snapshot is not None:
        return snapshot
    routed = route(job.source, job.relative_path, mappings)
    return routed[1] if routed is not None and routed[1].dataset == job.dataset else None


def still_mapped(job: Job, mappings: Sequence[MappingConfig]) -> bool:
    return any(m.source == job.source and m.dataset == job.dataset for m in mappings)


def held_message(why: str) -> str:
    """The job's error while it is held: what happened and what the operator can do."""
    return (
        f"held ({HELD_REASON}): {why}. It blocks nothing and waits: add a [[mapping]] "
        "for this source and dataset back and reload (SIGHUP) to publish it; or leave "
        "it held and move the file out of the drop folder (a copy dropped again is a new "
        "file, routed by today's mappings)"
    )


def _snapshot(job: Job) -> MappingConfig | None:
    if job.routing is None:
        return None
    try:
        return MappingConfig.model_validate(job.routing)
    except ValidationError as exc:  # written by another release with other keys
        logger.warning(
            "job %s: its routing snapshot cannot be read (%s); routing it by today's mappings",
            job.id,
            exc.errors()[0]["msg"] if exc.errors() else exc,
        )
        return None


async def release_held(store: StateStore, mappings: Sequence[MappingConfig]) -> int:
    """Put HELD jobs whose mapping is back into their lanes again; how many."""
    released = 0
    for job in await store.unfinished_jobs():
        if job.state is not JobState.HELD or job_mapping(job, mappings)[0] is None:
            continue
        try:
            await store.transition(
                job.id,
                JobState.DISCOVERED,
                expect=JobState.HELD,
                details={"released": "a mapping for its source and dataset is configured again"},
                error=None,
                next_attempt_at=None,
            )
        except StaleTransition:
            continue  # another replica, starting at the same time, released it first
        logger.info(
            "released held job %s (%s:%s → %s)",
            job.id,
            job.source,
            job.relative_path,
            job.dataset,
        )
        released += 1
    return released
