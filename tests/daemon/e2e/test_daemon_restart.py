"""``dsmsyncd run`` as a real process: kill -9 mid-job and SIGTERM drain, then restart.

The file is large enough (tens of MB, one chunk in flight at a time) that the job is
observably in ``uploading`` or ``processing`` in the state store when the signal goes.
Whatever step the signal cut, the file ends up on the dataset exactly once and no
revision is left open (invariant 1).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import aiohttp

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, wait_until
from tests.daemon.e2e.site import Site, big_csv, job_state
from tests.daemon.support.datasets import publish_dataset

BIG_ROWS = 1_000_000  # about 30 MB: eight 4 MiB chunks, then a parse of a million rows
IN_FLIGHT = (JobState.UPLOADING, JobState.PROCESSING)


async def prepare(site: Site, client: DsmapiClient) -> str:
    ff = await publish_dataset(client, b"id,name,score\n0,seed,0\n")
    site.map(ff, action="update")
    site.limits = {"max_concurrent_chunks": 1, "drain_timeout": "30s"}
    site.write_config()
    return ff


async def wait_for_state(site: Site, name: str, states: tuple[JobState, ...]) -> JobState:
    async def reached() -> JobState | None:
        state = job_state(site, name)
        return state if state in states else None

    return await wait_until(reached, within=60, what=f"{name} in {states}")


async def assert_published_once(site: Site, http: Http, ff: str, name: str) -> None:
    jobs = [row for row in site.jobs() if row["relative_path"] == name]
    assert [row["state"] for row in jobs] == ["published"]
    assert await http.count(ff) == BIG_ROWS + 1
    assert len(await http.rows(ff, **{"$where": "id = 7"})) == 1
    assert await http.open_revisions(ff) == []
    day = datetime.now(UTC)
    assert (site.archive / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" / name).exists()


async def test_daemon_killed_mid_job_resumes_and_publishes_once(
    site: Site, client: DsmapiClient, http: Http, daemon_process: DaemonProcess
) -> None:
    ff = await prepare(site, client)
    await daemon_process.start()
    site.drop_file("big.csv", big_csv(BIG_ROWS))
    await wait_for_state(site, "big.csv", IN_FLIGHT)
    daemon_process.kill()
    assert await daemon_process.wait(10) == -9
    cut_in = job_state(site, "big.csv")
    assert cut_in is not None
    assert cut_in is not JobState.PUBLISHED, "the job finished before the kill landed"

    await daemon_process.start()
    await wait_for_state(site, "big.csv", (JobState.PUBLISHED,))
    await assert_published_once(site, http, ff, "big.csv")


async def test_daemon_sigterm_drains_and_exits_zero(
    site: Site, client: DsmapiClient, http: Http, daemon_process: DaemonProcess
) -> None:
    ff = await prepare(site, client)
    await daemon_process.start()
    admin = daemon_process.admin_url()
    assert admin is not None
    site.drop_file("big.csv", big_csv(BIG_ROWS))
    await wait_for_state(site, "big.csv", IN_FLIGHT)
    began = time.monotonic()
    daemon_process.terminate()
    readyz: list[int] = []
    async with aiohttp.ClientSession() as session:

        async def draining_or_gone() -> bool:
            if daemon_process.process is not None and daemon_process.process.returncode:
                return True
            try:
                async with session.get(f"{admin}/readyz") as response:
                    readyz.append(response.status)
                    return response.status == 503
            except aiohttp.ClientError:
                return True  # the admin server is already closed: the drain is over

        await wait_until(draining_or_gone, within=30, what="/readyz 503 or exit")
    assert await daemon_process.wait(40) == 0
    assert time.monotonic() - began < 30 + 5
    if job_state(site, "big.csv") is not JobState.PUBLISHED:
        await daemon_process.start()  # cut by the drain timeout: the next start resumes it
        await wait_for_state(site, "big.csv", (JobState.PUBLISHED,))
    await assert_published_once(site, http, ff, "big.csv")
    assert 503 in readyz, readyz


async def test_daemon_sigterm_past_drain_timeout_cuts_job_and_next_start_resumes(
    site: Site, client: DsmapiClient, http: Http, daemon_process: DaemonProcess
) -> None:
    ff = await prepare(site, client)
    site.limits = {"max_concurrent_chunks": 1, "drain_timeout": "100ms"}
    site.write_config()
    await daemon_process.start()
    site.drop_file("big.csv", big_csv(BIG_ROWS))
    await wait_for_state(site, "big.csv", IN_FLIGHT)
    daemon_process.terminate()
    assert await daemon_process.wait(20) == 0
    cut_in = job_state(site, "big.csv")
    assert cut_in is not None
    assert cut_in is not JobState.PUBLISHED, "the job finished within 100ms of SIGTERM"
    assert 'all_jobs_finished": false' in daemon_process.log.read_text()

    await daemon_process.start()
    await wait_for_state(site, "big.csv", (JobState.PUBLISHED,))
    await assert_published_once(site, http, ff, "big.csv")
