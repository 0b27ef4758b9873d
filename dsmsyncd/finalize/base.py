"""What every finalizer does once a job is over: put its file where its mapping says.

A finalizer is paired with the source that found the file (a drop folder with
``FolderFinalizer``, a bucket with ``BucketFinalizer``) where the daemon builds its
sources; the pipeline sees only this protocol.
"""

from __future__ import annotations

import logging
from typing import Protocol

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.state import Job

logger = logging.getLogger("dsmsyncd.finalize")


class Finalizer(Protocol):
    """Puts a finished job's file where its mapping says; returns where it went."""

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str: ...

    async def quarantine(
        self, job: Job, mapping: MappingConfig, report: QuarantineReport
    ) -> str: ...


class SourceGoneFinalizer:
    """For a job whose source a reload removed while the job ran (one being applied is
    followed to its end): nothing knows where its file may go any more, so the file
    stays where it is, the job still ends, and the log says why (a quarantine report is
    logged whole, since there is no folder to write it to)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _left(self, job: Job) -> str:
        return (
            f"left in place: {job.relative_path} (source {self.source!r} is no longer "
            "configured, so nothing moved it; move it by hand)"
        )

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str:
        logger.warning("job %s: %s", job.id, self._left(job))
        return self._left(job)

    async def quarantine(self, job: Job, mapping: MappingConfig, report: QuarantineReport) -> str:
        logger.warning("job %s: %s; its report: %s", job.id, self._left(job), report.to_json())
        return self._left(job)
