"""``add_job`` is ``add_jobs`` of one file: the rule written once for both stores.

Discovery records the files one look found in one transaction (``add_jobs``); a caller
with a single file (tests, ``push``) uses ``add_job``. Both stores mix this in so that
the keyword form and its mapping to ``NewJob`` live in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from dsmsyncd.state.model import Job, NewJob


class AddOneJob:
    if TYPE_CHECKING:  # provided by the store this is mixed into

        async def add_jobs(self, jobs: Sequence[NewJob]) -> list[Job | None]: ...

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
        new = NewJob(
            *(source, relative_path, identity, size, mtime, dataset, mapping_index),
            *(content_sha256, routing),
        )
        (job,) = await self.add_jobs([new])
        return job
