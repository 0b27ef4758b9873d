"""A file is taken only once it is complete: ``*.part`` is ignored, a growing file waits."""

from __future__ import annotations

import json
import os
from typing import Any

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.sources.base import Candidate, file_identity
from dsmsyncd.sources.folder import FolderSource
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import RunningDaemon, running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import wait_until
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

HEADER = b"id,name,score\n"


def rows(first: int, count: int) -> bytes:
    return b"".join(b"%d,row-%d,%d\n" % (i, i, i) for i in range(first, first + count))


async def one_row_dataset(site: Site, client: DsmapiClient, **options: Any) -> str:
    """A dataset published with one row, mapped from the drop folder (update)."""
    ff = await publish_dataset(client, HEADER + rows(0, 1))
    site.map(ff, action="update", **options)
    return ff


async def until_pending(daemon: RunningDaemon, what: str) -> None:
    """Until the drop folder's source has seen a file that is not yet stable."""
    source = daemon.daemon._sources["drop"]
    assert isinstance(source, FolderSource)

    async def seen() -> bool:
        return source.pending_count >= 1

    await wait_until(seen, within=10, what=what)


async def test_daemon_part_file_ignored_until_renamed(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await one_row_dataset(site, client)
    partial = site.drop / "late.csv.part"
    async with running_daemon(site) as daemon:
        partial.write_bytes(HEADER + rows(100, 3))
        # Dropped after the .part file: had the .part been taken, it would be first.
        site.drop_file("other.csv", HEADER + rows(200, 2))
        (other,) = await daemon.finished_jobs(1)
        assert other.relative_path == "other.csv"
        assert other.state is JobState.PUBLISHED, other.error
        assert partial.exists()
        assert [row["relative_path"] for row in site.jobs()] == ["other.csv"]
        assert await http.count(ff) == 3

        os.replace(partial, site.drop / "late.csv")
        (late,) = await daemon.finished_jobs(1)
    assert (late.relative_path, late.state) == ("late.csv", JobState.PUBLISHED)
    assert await http.count(ff) == 6
    assert sorted(r["id"] for r in await http.rows(ff, **{"$where": "id >= 100"})) == [
        "100",
        "101",
        "102",
        "200",
        "201",
    ]


async def test_daemon_growing_file_published_with_both_parts(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await one_row_dataset(site, client)
    site.min_age = "1s"
    target = site.drop / "growing.csv"
    async with running_daemon(site) as daemon:
        with target.open("wb") as out:
            out.write(HEADER + rows(1, 5))
            out.flush()
            # The daemon has now seen the first part (a scan recorded it in its gate);
            # the second part lands well before min_age can elapse.
            await until_pending(daemon, "the first part seen")
            out.write(rows(6, 5))
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    assert job.size == len(HEADER + rows(1, 10))
    assert await http.count(ff) == 11
    assert [row["relative_path"] for row in site.jobs()] == ["growing.csv"]


async def test_daemon_file_vanished_before_its_job_is_quarantined_and_lane_goes_on(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await one_row_dataset(site, client)
    async with running_daemon(site) as daemon:
        # What the source reports when a file is removed between discovery and its job.
        identity = file_identity("ghost.csv", 20, 1)
        await daemon.daemon.accept(Candidate("drop", "ghost.csv", 20, 1, identity))
        (ghost,) = await daemon.finished_jobs(1, within=10)
        site.drop_file("after.csv", HEADER + rows(1, 2))
        (after,) = await daemon.finished_jobs(1, within=10)
    assert ghost.state is JobState.QUARANTINED
    assert ghost.error is not None
    assert ghost.error.startswith("file_vanished")
    report = json.loads((site.quarantine / "ghost.csv.report.json").read_text())
    assert report["reason"] == "file_vanished"
    assert (after.relative_path, after.state) == ("after.csv", JobState.PUBLISHED)
    assert await http.count(ff) == 3
    assert await http.open_revisions(ff) == []


async def test_daemon_file_created_empty_and_filled_before_min_age_is_published_whole(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await one_row_dataset(site, client)
    site.min_age = "1s"
    target = site.drop / "late.csv"
    async with running_daemon(site) as daemon:
        with target.open("wb") as out:  # created empty, as `touch` or a slow writer does
            await until_pending(daemon, "the empty file seen")
            out.write(HEADER + rows(1, 4))
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.PUBLISHED, job.error
    assert job.size == len(HEADER + rows(1, 4))
    assert await http.count(ff) == 5
    assert [(row["relative_path"], row["size"]) for row in site.jobs()] == [("late.csv", job.size)]


async def test_daemon_job_of_a_file_found_empty_never_publishes_bytes_written_since(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await one_row_dataset(site, client, skip_duplicates=False)
    site.min_age = "2s"
    async with running_daemon(site) as daemon:
        filled = site.drop_file("late.csv", HEADER + rows(1, 4))
        # What the source reported when the file was still empty (it stayed so for
        # min_age); the writer has filled it since, before its job opened it.
        found_at = filled.stat().st_mtime_ns - 10**9
        empty = Candidate("drop", "late.csv", 0, found_at, file_identity("late.csv", 0, found_at))
        await daemon.daemon.accept(empty)
        first, second = await daemon.finished_jobs(2)
    assert (first.size, first.state) == (0, JobState.SKIPPED)
    assert first.error is not None
    assert "changed since it was found (size 0 -> " in first.error
    assert (second.size, second.state) == (len(HEADER + rows(1, 4)), JobState.PUBLISHED)
    assert await http.count(ff) == 5  # the filled content, once
    assert await http.open_revisions(ff) == []
