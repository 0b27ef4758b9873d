"""What every finalizer does once a job is over: put its file where its mapping says.

A finalizer is paired with the source that found the file (a drop folder with
``FolderFinalizer``, a bucket with ``BucketFinalizer``) where the daemon builds its
sources; the pipeline sees only this protocol.
"""

from __future__ import annotations

from typing import Protocol

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.state import Job


class Finalizer(Protocol):
    """Puts a finished job's file where its mapping says; returns where it went."""

    async def succeeded(self, job: Job, mapping: MappingConfig) -> str: ...

    async def quarantine(
        self, job: Job, mapping: MappingConfig, report: QuarantineReport
    ) -> str: ...
