"""A rotated password holds the files until the credentials work again (issue 11 #8).

The real server is restarted with another password for the daemon's user while the
daemon runs, and then restarted again with the old one, as an operator rotating a
secret in the wrong order would do. Nothing may be quarantined meanwhile: the jobs
wait and retry, the refusal is logged once, and every file publishes afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dsmsyncd.dsmapi import Credentials, DsmapiClient
from dsmsyncd.server.main import RunningServer, ServeOptions, start_server
from dsmsyncd.state import Job, JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.log_lines import watching
from tests.support.local_server import ROBOT

SEED = b"id,name\n1,ann\n2,bob\n"


class Restartable:
    """The local server on a fixed port and data folder, restarted with other users."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = 0
        self.running: RunningServer | None = None

    async def start(self, password: str) -> RunningServer:
        self.running = await start_server(
            ServeOptions(
                listen_host="127.0.0.1",
                listen_port=self.port,
                data_dir=self.data_dir,
                users=[(ROBOT[0], password)],
            )
        )
        port = urlsplit(self.running.url).port
        assert port is not None
        self.port = port
        return self.running

    async def restart(self, password: str) -> RunningServer:
        await self.stop()
        return await self.start(password)

    async def stop(self) -> None:
        if self.running is not None:
            running, self.running = self.running, None
            await running.stop()


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[Restartable]:
    server = Restartable(tmp_path / "server")
    try:
        yield server
    finally:
        await server.stop()


async def test_rotated_password_holds_files_until_the_credentials_work_again(
    restartable: Restartable, tmp_path: Path
) -> None:
    server = await restartable.start(ROBOT[1])
    credentials = Credentials(username=ROBOT[0], password=ROBOT[1])
    async with DsmapiClient(server.url, credentials) as client:
        first = await publish_dataset(client, SEED)
        second = await publish_dataset(client, SEED)
    site = Site(
        tmp_path / "site",
        server.url,
        limits={"retry_delay": "20ms", "retry_max_delay": "100ms"},
    )
    site.map(first, match="a*.csv")
    site.map(second, match="b*.csv")
    with watching("dsmsyncd.pipeline.sync_job", "refuses our credentials") as refusals:
        await restartable.restart("rotated-elsewhere")
        async with running_daemon(site) as daemon:
            site.drop_file("a1.csv", b"id,name\n3,cy\n4,di\n")
            site.drop_file("b1.csv", b"id,name\n5,ed\n")

            def refused_twice(runs: list[Job]) -> bool:
                refused = [
                    job.relative_path
                    for job in runs
                    if job.state is JobState.FAILED_RETRYABLE
                    and "answered 401" in (job.error or "")
                ]
                return all(refused.count(name) >= 2 for name in ("a1.csv", "b1.csv"))

            await daemon.until(refused_twice)
            assert all(row["attempts"] >= 2 for row in site.jobs())
            assert not site.quarantine.exists() or not any(site.quarantine.iterdir())
            assert (site.drop / "a1.csv").exists()
            assert (site.drop / "b1.csv").exists()

            server = await restartable.restart(ROBOT[1])
            jobs = await daemon.finished_jobs(2, within=60)

    assert sorted(job.state for job in jobs) == [JobState.PUBLISHED, JobState.PUBLISHED]
    assert refusals.count == 1
    assert not site.quarantine.exists() or not any(site.quarantine.iterdir())
    async with DsmapiClient(server.url, credentials) as client:
        assert len(await client.read_rows(first)) == 4
        assert len(await client.read_rows(second)) == 3
