"""A file replaced after its upload is not archived in place of the published one (issue 11 #4).

The seam: a daemon whose folder finalizer, the first time it is asked to archive
``day.csv``, first lets a writer replace that file (written to ``.part`` and renamed
over it, as careful writers do). That is exactly the window between apply and
archive, without any timing. The published version's job must leave the new version
in place; discovery must make it a job of its own, which publishes and archives it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.daemon.source_set import Sources
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.finalize.base import Finalizer
from dsmsyncd.finalize.report import QuarantineReport
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.queued import queue_files
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name\n1,ann\n2,bob\n"
FIRST = b"id,name\n3,cy\n4,di\n"
SECOND = b"id,name\n5,ed\n6,fi\n7,gus\n"


class ReplaceBeforeArchive:
    """Wraps a finalizer: before archiving ``name`` the first time, the writer replaces it."""

    def __init__(self, site: Site, name: str, content: bytes) -> None:
        self.site = site
        self.name = name
        self.content = content
        self.replaced = False

    def wrap(self, inner: Finalizer) -> Finalizer:
        seam = self

        class Wrapped:
            async def succeeded(self, job: Job, mapping: MappingConfig) -> str:
                if job.relative_path == seam.name and not seam.replaced:
                    seam.replaced = True
                    path = seam.site.drop_file(seam.name, seam.content)
                    later = path.stat().st_mtime_ns + 5_000_000_000  # unmistakably newer
                    os.utime(path, ns=(later, later))
                return await inner.succeeded(job, mapping)

            async def quarantine(
                self, job: Job, mapping: MappingConfig, report: QuarantineReport
            ) -> str:
                return await inner.quarantine(job, mapping, report)

        return Wrapped()

    def daemon_class(self) -> type[Daemon]:
        seam = self

        class SeamDaemon(Daemon):
            def _finalizer_for(self, job: Job, sources: Sources | None = None) -> Finalizer:
                return seam.wrap(super()._finalizer_for(job, sources))

        return SeamDaemon


async def test_file_replaced_between_apply_and_archive_stays_and_publishes_as_its_own_job(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    seam = ReplaceBeforeArchive(site, "day.csv", SECOND)
    async with running_daemon(site, seam.daemon_class()) as daemon:
        site.drop_file("day.csv", FIRST)
        first, second = await daemon.finished_jobs(2)

    assert seam.replaced
    assert (first.state, second.state) == (JobState.PUBLISHED, JobState.PUBLISHED)
    assert first.identity != second.identity
    assert await http.count(ff) == 2 + 2 + 3
    archived = sorted(path for path in site.archive.rglob("*") if path.is_file())
    assert [path.name for path in archived] == ["day.csv"]
    assert archived[0].read_bytes() == SECOND  # archived by its own job, after publishing
    assert not (site.drop / "day.csv").exists()
    assert not site.quarantine.exists() or not any(site.quarantine.iterdir())
    assert len(site.jobs()) == 2
    with contextlib.closing(sqlite3.connect(site.state_db)) as db:
        [where] = [
            json.loads(details)["file"]
            for (details,) in db.execute(
                "SELECT details FROM job_events WHERE job_id = ? AND details LIKE '%\"file\"%'",
                (first.id,),
            )
        ]
    assert where.startswith("left in place: ")
    assert "is not the version this job read" in where


async def test_file_replaced_before_its_job_reads_it_is_published_once_by_its_own_job(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff, skip_duplicates=False)  # nothing else would catch a second publication
    [path] = await queue_files(site, {"day.csv": FIRST})  # discovered as FIRST ...
    partial = path.with_name("day.csv.part")
    partial.write_bytes(SECOND)  # ... and replaced before its job started
    os.replace(partial, path)
    async with running_daemon(site) as daemon:
        first, second = await daemon.finished_jobs(2)

    assert first.state is JobState.SKIPPED
    assert first.error is not None
    assert "changed since it was found" in first.error
    assert second.state is JobState.PUBLISHED, second.error
    assert await http.count(ff) == 2 + 3  # SECOND's rows, once
    assert [p.read_bytes() for p in site.archive.rglob("day.csv")] == [SECOND]
