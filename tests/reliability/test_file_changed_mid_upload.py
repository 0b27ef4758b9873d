"""A file deleted, truncated or replaced by another of the same name while it uploads.

The seam is the link: the server takes 1 KiB chunks, one at a time, and the fault
proxy holds the third chunk request unsent (``held``, an event); the test changes the
file, then lets the request go. The bytes already sent belong to the version the job
found; the job must notice before it reads another byte, discard its revision, and
never publish a mix of the two versions. A version still there afterwards (truncated,
replaced) is a job of its own and publishes once; a deleted file publishes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.reliability.appended import (
    HEADER,
    FastRetryDaemon,
    append_dataset,
    assert_rows_once,
    csv,
    rows,
)
from tests.reliability.faults import Fault, FaultProxy, fault_proxy

THIRD_CHUNK = r"^POST /api/publishing/v1/source/\d+/chunk/2/\d+ "
FIRST = csv(1000, 400)  # about 8 KiB: eight chunks of 1 KiB


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[FaultProxy]:
    server.state.preferred_chunk_size = 1024
    async with fault_proxy(server.url) as running:
        yield running


async def upload_until_third_chunk(
    site: Site, client: DsmapiClient, proxy: FaultProxy
) -> tuple[str, Fault]:
    ff = await append_dataset(client)
    site.server_url = proxy.url
    site.map(ff, skip_duplicates=False)
    site.limits.update(max_concurrent_chunks=1, retry_delay="10ms", retry_max_delay="50ms")
    return ff, proxy.add(Fault(THIRD_CHUNK, "hold", when="before"))


async def test_file_deleted_mid_upload_publishes_nothing_and_leaves_no_revision(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy
) -> None:
    ff, held = await upload_until_third_chunk(site, client, proxy)
    async with running_daemon(site, FastRetryDaemon) as daemon:
        path = site.drop_file("day.csv", FIRST)
        await held.held.wait()
        path.unlink()
        proxy.release()
        (job,) = await daemon.finished_jobs(1)
    assert job.state is JobState.QUARANTINED, job
    assert job.error is not None
    assert job.error.startswith("file_vanished: day.csv disappeared before it was sent"), job
    assert "nothing was published; drop the file again to publish it" in job.error
    report = json.loads((site.quarantine / "day.csv.report.json").read_text())
    assert report["reason"] == "file_vanished"
    await assert_rows_once(http, ff, [])


@pytest.mark.parametrize("how", ["truncated", "replaced"])
async def test_file_changed_mid_upload_publishes_only_the_new_version_once(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy, how: str
) -> None:
    ff, held = await upload_until_third_chunk(site, client, proxy)
    async with running_daemon(site, FastRetryDaemon) as daemon:
        path = site.drop_file("day.csv", FIRST)
        await held.held.wait()
        if how == "truncated":  # cut in place at a line end, as a restarted export does
            with path.open("r+b") as out:
                out.truncate(len(HEADER + rows(1000, 100)))
            expected = list(range(1000, 1100))
        else:  # renamed over, as careful writers do
            site.drop_file("day.csv", csv(5000, 30))
            expected = list(range(5000, 5030))
        later = path.stat().st_mtime_ns + 5_000_000_000  # unmistakably another version
        os.utime(path, ns=(later, later))
        size = path.stat().st_size
        proxy.release()
        first, second = await daemon.finished_jobs(2)
    assert first.state is JobState.SKIPPED, first
    assert first.error is not None
    assert f"{path}: rewritten while being read (size {len(FIRST)} -> {size}," in first.error
    assert second.state is JobState.PUBLISHED, second.error
    await assert_rows_once(http, ff, expected)
