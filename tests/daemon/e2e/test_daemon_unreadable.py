"""One unreadable file no longer blocks its dataset for good (issue 11 #6).

A queued file is made unreadable the real way: ``chmod 000`` when the tests run as
an ordinary user, and, as root (who reads a mode-000 file anyway), a directory put in
its place, as a careless ``mkdir`` or a broken unpacking would. The daemon tries it
``max_read_attempts`` times with back-off, quarantines it with a report saying why,
and the file queued behind it on the same dataset publishes.
"""

from __future__ import annotations

import json
import os
import shutil

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.queued import queue_files
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

SEED = b"id,name\n1,ann\n2,bob\n"


async def test_unreadable_file_is_quarantined_after_capped_retries_and_the_lane_moves_on(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, SEED)
    site.map(ff)
    site.limits.update(retry_delay="10ms", retry_max_delay="40ms", max_read_attempts=3)
    bad, _good = await queue_files(
        site, {"locked.csv": b"id,name\n3,cy\n", "later.csv": b"id,name\n4,di\n5,ed\n"}
    )
    if os.geteuid() == 0:
        bad.unlink()
        bad.mkdir()  # root reads a mode-000 file: make the open itself fail instead
    else:
        bad.chmod(0)

    try:
        async with running_daemon(site) as daemon:
            jobs = {job.relative_path: job for job in await daemon.finished_jobs(2)}
    finally:
        if bad.is_dir():
            shutil.rmtree(bad)
        elif bad.exists():
            bad.chmod(0o600)

    assert jobs["later.csv"].state is JobState.PUBLISHED, jobs["later.csv"].error
    assert await http.count(ff) == 2 + 2
    locked = jobs["locked.csv"]
    assert locked.state is JobState.QUARANTINED
    assert locked.read_failures == 3
    assert locked.attempts == 2  # two retries, the third failure quarantines
    assert locked.error is not None
    assert "could not be read in 3 attempt(s)" in locked.error
    report = json.loads((site.quarantine / "locked.csv.report.json").read_text())
    assert report["reason"] == "file_unreadable"
    assert "Make it a regular file the dsmsyncd user can read" in report["message"]
    row = next(r for r in site.jobs() if r["relative_path"] == "locked.csv")
    assert row["read_failures"] == 3
