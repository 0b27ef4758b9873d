"""The target killed with SIGKILL mid-job and started again on its data dir.

``dsmsyncd serve`` runs as a real process; the daemon (in this event loop) reaches
it through the fault proxy, which holds the server's answer to one step: the server
did the step, then dies before the daemon hears. Started again on the same data dir
(on a new port the proxy now points at), the server must still hold what it
acknowledged, and the daemon must finish the job: every row exactly once on an
append dataset, no revision left open. The file spans three 4 MiB chunks.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import robot_client
from tests.reliability.appended import FastRetryDaemon, append_dataset, assert_rows_once, csv
from tests.reliability.faults import Fault, fault_proxy
from tests.server.support.serve_process import ServeProcess, serve_process, write_users
from tests.support.local_server import ROBOT, basic_auth

ROWS = 600_000  # about 9.8 MB: three chunks
REV = r"/api/publishing/v1/revision/[a-z0-9-]+"
STEPS = {
    "second chunk taken": (r"^POST /api/publishing/v1/source/\d+/chunk/1/\d+ ", "after"),
    "commit taken": (r"/commit ", "after"),
    "apply taken": (rf"^PUT {REV}/\d+/apply ", "after"),
}


@pytest.fixture
def users(tmp_path: Path) -> Path:
    return write_users(tmp_path / "users", ROBOT)


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.mark.parametrize("step", list(STEPS), ids=list(STEPS))
async def test_server_killed_mid_job_and_restarted_every_row_lands_once(
    site: Site, users: Path, tmp_path: Path, step: str
) -> None:
    pattern, when = STEPS[step]
    data = tmp_path / "served"  # tmp_path / "server" is the in-process one
    first: ServeProcess
    async with serve_process(data, "--users-file", str(users)) as first:
        async with robot_client(first.url) as client:
            ff = await append_dataset(client)
        async with fault_proxy(first.url) as proxy:
            site.server_url = proxy.url
            site.map(ff, skip_duplicates=False)
            site.limits.update(retry_delay="10ms", retry_max_delay="50ms")
            fault = proxy.add(Fault(pattern, "hold", when=when))
            async with running_daemon(site, FastRetryDaemon) as daemon:
                site.drop_file("big.csv", csv(1, ROWS))
                async with asyncio.timeout(60):
                    await fault.held.wait()
                await first.kill()
                async with serve_process(data, "--users-file", str(users)) as second:
                    proxy.upstream_port = port_of(second.url)
                    await proxy.down()  # the held link dies with the old server
                    await proxy.up()
                    (job,) = await daemon.finished_jobs(1, within=90)
                    assert job.state is JobState.PUBLISHED, job.error
                    async with aiohttp.ClientSession(
                        headers={"Authorization": basic_auth(*ROBOT)}
                    ) as session:
                        http = Http(second.url, session)
                        await assert_rows_once(
                            http, ff, list(range(1, ROWS + 1)), seed=f"server killed: {step}"
                        )
