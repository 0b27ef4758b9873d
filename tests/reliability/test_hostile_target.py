"""A target that fails: 5xx, 429 with Retry-After, a request that hangs, down for long.

The daemon talks to the real local server through ``faults.FaultProxy``, which answers,
hangs or refuses exactly the requests the test names. Each case ends in a retry and
then every row exactly once on an append dataset: never a lost or doubled file, never
a quarantined file for a fault of the target's, never a crashed daemon.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.reliability.appended import FastRetryDaemon, append_dataset, assert_rows_once, csv
from tests.reliability.faults import Fault, FaultProxy, fault_proxy

CHUNK = r"^POST /api/publishing/v1/source/\d+/chunk/\d+/\d+ "
OPEN = r"^POST /api/publishing/v1/revision/[a-z0-9-]+ "
APPLY = r"^PUT /api/publishing/v1/revision/[a-z0-9-]+/\d+/apply "
COMMIT = r"/commit "
READ_SOURCE = r"^GET /api/publishing/v1/source/\d+ "


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[FaultProxy]:
    server.state.answer_wait_s = 0.0  # answers in progress, so the source is polled
    async with fault_proxy(server.url) as running:
        yield running


async def publish_through(site: Site, proxy: FaultProxy, client: DsmapiClient) -> str:
    ff = await append_dataset(client)
    site.server_url = proxy.url
    site.map(ff)
    site.limits.update(retry_delay="10ms", retry_max_delay="50ms")
    return ff


@pytest.mark.parametrize(
    ("pattern", "status"),
    [
        (CHUNK, 503),
        (COMMIT, 500),
        (READ_SOURCE, 502),
        (OPEN, 503),
        (APPLY, 502),
    ],
    ids=["chunk 503", "commit 500", "read source 502", "open revision 503", "apply 502"],
)
async def test_target_answering_5xx_is_retried_and_every_row_lands_once(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy, pattern: str, status: int
) -> None:
    ff = await publish_through(site, proxy, client)
    fault = proxy.add(Fault(pattern, "answer", times=3, status=status))
    async with running_daemon(site, FastRetryDaemon) as daemon:
        site.drop_file("day.csv", csv(1, 50))
        (job,) = await daemon.finished_jobs(1)
    assert fault.hits == 3
    assert job.state is JobState.PUBLISHED, job.error
    await assert_rows_once(http, ff, list(range(1, 51)))


async def test_target_answering_429_with_retry_after_is_retried_after_it(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy
) -> None:
    ff = await publish_through(site, proxy, client)
    fault = proxy.add(Fault(CHUNK, "answer", status=429, headers=(("Retry-After", "0.2"),)))
    async with running_daemon(site) as daemon:
        site.drop_file("day.csv", csv(1, 50))
        (job,) = await daemon.finished_jobs(1)
        retried = daemon.daemon.metrics.retries.labels("http_429")._value.get()
    assert fault.hits == 1
    assert retried == 1  # retried within the job run, after the server's Retry-After
    assert job.state is JobState.PUBLISHED, job.error
    assert job.attempts == 0
    await assert_rows_once(http, ff, list(range(1, 51)))


@pytest.mark.parametrize("pattern", [CHUNK, OPEN], ids=["chunk", "open revision"])
async def test_target_that_takes_a_request_and_never_answers_times_out_and_is_retried(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy, pattern: str
) -> None:
    ff = await publish_through(site, proxy, client)
    site.target = {"request_timeout": "1s"}
    fault = proxy.add(Fault(pattern, "hang"))
    async with running_daemon(site, FastRetryDaemon) as daemon:
        site.drop_file("day.csv", csv(1, 50))
        (job,) = await daemon.finished_jobs(1)
    assert fault.hits == 1
    assert fault.held.is_set()
    assert job.state is JobState.PUBLISHED, job.error
    await assert_rows_once(http, ff, list(range(1, 51)))


async def test_target_down_for_many_retries_keeps_the_file_and_publishes_once_it_is_back(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy
) -> None:
    ff = await publish_through(site, proxy, client)
    async with running_daemon(site, FastRetryDaemon) as daemon:
        await proxy.down()
        site.drop_file("day.csv", csv(1, 50))
        # Each run ends retryable: wait (on the runs, an event) for eight of them.
        await daemon.until(lambda runs: len(runs) >= 8, within=60)
        assert {run.state for run in daemon.runs} == {JobState.FAILED_RETRYABLE}
        assert all("Cannot connect" in (run.error or "") for run in daemon.runs)
        assert (site.drop / "day.csv").exists()
        await proxy.up()
        await daemon.until(lambda runs: runs[-1].state is JobState.PUBLISHED, within=60)
    assert [row["state"] for row in site.jobs()] == ["published"]
    assert not site.quarantine.exists() or not any(site.quarantine.iterdir())
    await assert_rows_once(http, ff, list(range(1, 51)))
