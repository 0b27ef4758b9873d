"""``dsmsyncd run`` killed with SIGKILL at each step of a job, then started again.

The daemon is a real child process talking to the real server through the fault
proxy, which holds the request of one step: unsent (``before``: the server never saw
it) or sent with its answer held (``after``: the server did it, the daemon never
heard). That is the exact moment of the kill, an event, no timing. Started again, the
daemon must finish the job with every row exactly once on an append dataset and no
revision left open. (Kills between the steps' state writes, with no request in
flight, are ``tests/daemon/integration/test_recovery.py``; halfway through a large
upload, ``tests/daemon/e2e/test_daemon_resume_upload.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, wait_until
from tests.daemon.e2e.site import Site, job_state
from tests.reliability.appended import append_dataset, assert_rows_once, csv
from tests.reliability.faults import Fault, FaultProxy, fault_proxy

REV = r"/api/publishing/v1/revision/[a-z0-9-]+"
SOURCE = r"/api/publishing/v1/source/\d+"
STEPS = {
    "open revision, unanswered": (rf"^POST {REV} ", "after"),
    "create source, unanswered": (rf"^POST {REV}/\d+/source ", "after"),
    "initiate upload, unsent": (rf"^POST {SOURCE}/initiate ", "before"),
    "second chunk, unanswered": (rf"^POST {SOURCE}/chunk/1/\d+ ", "after"),
    "commit, unanswered": (rf"^POST {SOURCE}/chunk/\d+/\d+/commit ", "after"),
    "apply, unsent": (rf"^PUT {REV}/\d+/apply ", "before"),
    "apply, unanswered": (rf"^PUT {REV}/\d+/apply ", "after"),
    "after apply, reading its task set": (rf"^GET {REV}/\d+/apply/\d+ ", "after"),
}


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[FaultProxy]:
    server.state.preferred_chunk_size = 1024
    server.state.answer_wait_s = 0.0  # answers in progress, so the task set is polled
    async with fault_proxy(server.url) as running:
        yield running


@pytest.mark.parametrize("step", list(STEPS), ids=list(STEPS))
async def test_daemon_killed_at_each_step_finishes_the_job_with_every_row_once(
    site: Site,
    client: DsmapiClient,
    http: Http,
    proxy: FaultProxy,
    daemon_process: DaemonProcess,
    step: str,
) -> None:
    pattern, when = STEPS[step]
    ff = await append_dataset(client)
    site.server_url = proxy.url
    site.map(ff, skip_duplicates=False)  # nothing but the daemon's record stops a double
    site.limits.update(max_concurrent_chunks=1, retry_delay="10ms", retry_max_delay="50ms")
    site.write_config()
    fault = proxy.add(Fault(pattern, "hold", when=when))
    await daemon_process.start()
    site.drop_file("day.csv", csv(1, 300))  # about 3 KiB: three chunks of 1 KiB

    async with asyncio.timeout(60):
        await fault.held.wait()
    daemon_process.kill()
    assert await daemon_process.wait(10) == -9
    cut_in = job_state(site, "day.csv")
    assert cut_in is not None
    assert cut_in is not JobState.PUBLISHED
    await proxy.down()  # the held request dies with its link; nothing reaches the server
    await proxy.up()

    await daemon_process.start()

    async def published() -> bool:
        return job_state(site, "day.csv") is JobState.PUBLISHED

    await wait_until(published, within=60, what=f"day.csv published after a kill at {step}")
    assert [row["state"] for row in site.jobs()] == ["published"]
    await assert_rows_once(http, ff, list(range(1, 301)), seed=f"killed at {step}")
