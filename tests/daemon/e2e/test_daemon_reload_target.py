"""SIGHUP with a new ``[target]``: the next file lands on the new target, not the old one.

Two real local servers; the daemon runs as a process. A file published before the
reload lands on the first server; after a SIGHUP that points ``[target]`` (and the
mapping) at the second, the next file lands on the second, and the first is untouched.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, wait_until
from tests.daemon.e2e.site import Site, job_state
from tests.daemon.support.datasets import publish_dataset
from tests.support.local_server import ROBOT, local_server

HEADER = b"id,name,score\n"


@pytest.fixture
async def second_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with local_server(tmp_path / "server-two", users=[ROBOT], tokens=[]) as running:
        yield running


async def finished(site: Site, name: str) -> JobState | None:
    state = job_state(site, name)
    return state if state in (JobState.PUBLISHED, JobState.QUARANTINED) else None


async def test_sighup_with_a_new_target_sends_the_next_file_there(
    site: Site,
    client: DsmapiClient,
    http: Http,
    second_server: RunningServer,
    daemon_process: DaemonProcess,
) -> None:
    first = await publish_dataset(client, HEADER + b"0,seed,0\n")
    credentials = Credentials(username=ROBOT[0], password=ROBOT[1])
    async with DsmapiClient(second_server.url, credentials) as second_client:
        second = await publish_dataset(second_client, HEADER + b"0,seed,0\n")
    site.map(first, action="update")
    site.write_config()
    await daemon_process.start()
    site.drop_file("before.csv", HEADER + b"1,ann,10\n")
    assert await wait_until(lambda: finished(site, "before.csv"), within=30) is JobState.PUBLISHED

    site.server_url = second_server.url
    site.mappings = []
    site.map(second, action="update")
    site.write_config()
    assert daemon_process.process is not None
    daemon_process.process.send_signal(signal.SIGHUP)

    async def reloaded() -> bool:
        return "configuration reloaded" in daemon_process.log.read_text(encoding="utf-8")

    await wait_until(reloaded, within=20, what="the reload")
    site.drop_file("after.csv", HEADER + b"2,bob,20\n3,cy,30\n")
    state = await wait_until(lambda: finished(site, "after.csv"), within=30)

    assert state is JobState.PUBLISHED, site.jobs()
    assert await http.count(first) == 2  # seed + before.csv, nothing after the reload
    async with DsmapiClient(second_server.url, credentials) as second_client:
        rows = await second_client.read_rows(second, {"$order": "id"})
    assert [row["id"] for row in rows] == ["0", "2", "3"]
    log = daemon_process.log.read_text(encoding="utf-8")
    assert f"[target] changed from {client.base_url} to {second_server.url}" in log
