"""Metadata sidecars in a job's run: pairing a data file with its sidecar, and the
metadata-only revision of a sidecar that arrives alone.

Pairing rules (README, "Metadata with the file"):

* A data job looks beside its file for ``NAME.meta.json``, then ``NAME.meta.toml``.
  A sidecar that is there but has not passed the stability gate yet (discovery has not
  recorded it) makes the data job wait and retry: the two are published together.
* A sidecar's own job, when its data file is beside it, ends SKIPPED (``paired``):
  the data job publishes and moves it. When its data file is not there, it opens a
  metadata-only revision (``update``, no upload) and applies it.
* A sidecar moved away by its data job before its own job ran ends SKIPPED too.
* A sidecar that cannot be used quarantines its pair (data file and sidecar), with a
  report naming the sidecar, the key and the problem.
"""

from __future__ import annotations

import dataclasses
import logging

from dsmsyncd.blob import Blob
from dsmsyncd.dsmapi import OutcomeUnknown
from dsmsyncd.pipeline import resume
from dsmsyncd.pipeline.context import JOB_LOGGER_NAME, PairedSidecar, RunningJob
from dsmsyncd.pipeline.refusals import Quarantine
from dsmsyncd.pipeline.sidecar_format import (
    MAX_SIDECAR_BYTES,
    SidecarError,
    data_path_of,
    parse_sidecar,
    sidecar_paths,
)
from dsmsyncd.state import Job, JobState, JobUpdate

logger = logging.getLogger(JOB_LOGGER_NAME)


class SidecarPending(Exception):
    """A sidecar is beside the data file but not stable yet: the data job waits for it."""


def is_sidecar(job: Job) -> bool:
    return data_path_of(job.relative_path) is not None


async def _metadata_of(path: str, blob: Blob) -> dict[str, object]:
    size = min(blob.size, MAX_SIDECAR_BYTES + 1)
    try:
        return parse_sidecar(path, await blob.read_range(0, size))
    except SidecarError as exc:
        raise Quarantine(
            "bad_metadata",
            f"metadata sidecar {path}: {exc} (fix the sidecar and drop the pair again)",
        ) from exc


async def _stable_sidecar(run: RunningJob) -> tuple[Job, Blob] | None:
    """The data job's sidecar (as a Job row of its path and identity) and its bytes;
    None if it has none; SidecarPending if it has not passed the stability gate."""
    open_beside = run.ctx.open_beside
    if open_beside is None:
        return None
    for path in sidecar_paths(run.job.relative_path):
        try:
            blob, identity = open_beside(run.job, path)
        except FileNotFoundError:
            continue
        if not await run.ctx.store.is_known(run.job.source, identity):
            raise SidecarPending(
                f"waiting for its metadata sidecar {path} to be stable (it is published "
                "with the file)"
            )
        return dataclasses.replace(run.job, relative_path=path, identity=identity), blob
    return None


async def find_sidecar(run: RunningJob) -> PairedSidecar | None:
    """The data job's stable sidecar with its metadata, or None if it has none.

    Raises SidecarPending for a sidecar not recorded yet, and Quarantine for one that
    cannot be used (``run.sidecar`` is set first, so that it is quarantined too)."""
    found = await _stable_sidecar(run)
    if found is None:
        return None
    paired, blob = found
    run.sidecar = PairedSidecar(paired, {})  # a bad one is quarantined with its pair
    run.sidecar = PairedSidecar(paired, await _metadata_of(paired.relative_path, blob))
    logger.info("publishing with metadata sidecar %s", paired.relative_path)
    return run.sidecar


async def rejoin_sidecar(run: RunningJob) -> None:
    """A resumed data job's sidecar, so that it is finalized with the file: its metadata
    went into the revision before the crash, and is not read again."""
    try:
        found = await _stable_sidecar(run)
    except SidecarPending:
        return
    if found is not None:
        run.sidecar = PairedSidecar(found[0], {})


async def _paired(run: RunningJob, data_path: str, why: str) -> Job:
    """The sidecar goes (or went) with its data file's job: nothing for its own to do."""
    logger.info("metadata sidecar of %s: %s", data_path, why)
    details: dict[str, object] = {"reason": "paired", "data_file": data_path, "message": why}
    job = await run.to(JobState.SKIPPED, details)
    run.ctx.metrics.finished(job.dataset, "skipped")
    return job


async def metadata_only(run: RunningJob) -> Job:
    """A sidecar's own job: paired (SKIPPED), gone (SKIPPED) or a metadata-only revision."""
    data_path = data_path_of(run.job.relative_path)
    assert data_path is not None
    # A kept data file stays beside its sidecar for good: pairing would never apply a
    # sidecar dropped later, so under on_success = "keep" a sidecar always applies.
    if run.ctx.open_beside is not None and run.mapping.on_success != "keep":
        try:
            run.ctx.open_beside(run.job, data_path)
        except FileNotFoundError:
            pass
        else:
            return await _paired(run, data_path, "its data file publishes it")
    try:
        blob = run.blob()
    except FileNotFoundError:
        return await _paired(run, data_path, "gone: moved with its data file, or deleted")
    metadata = await _metadata_of(run.job.relative_path, blob)
    if run.dry_run:
        details = {"dry_run": True, "outcome": "would_apply", "metadata": metadata}
        return await run.to(JobState.DISCARDED, details)
    fields: JobUpdate = {} if run.job.started_at else {"started_at": run.ctx.clock()}
    await run.to(JobState.OPENING, {"metadata_only": True}, **fields)
    revision = await run.client.open_revision(run.job.dataset, "update", metadata=metadata)
    run.revision = revision
    await run.to(JobState.APPLYING, revision_seq=revision.seq, revision_id=revision.id)
    try:
        task_set = await run.client.apply(revision, None)
    except OutcomeUnknown as unknown:
        task_set = await resume.apply_outcome(run, unknown)
    if task_set.id is not None:
        await run.to(JobState.APPLYING, task_set_id=int(task_set.id))
    return await run.follow(task_set)
