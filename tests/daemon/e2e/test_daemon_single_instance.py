"""One daemon per state file: a second ``dsmsyncd run`` on it refuses to start, exit 3.

Two real daemon processes on one SQLite state file: the second names the file and the
first one's pid in one log line and exits with the startup-failure code, while the
first keeps publishing; ``status`` and ``check-config`` still work beside it. A first
daemon killed with SIGKILL leaves no lock behind: the next one starts.
"""

from __future__ import annotations

import json

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, run_cli, wait_until
from tests.daemon.e2e.site import Site, job_state
from tests.daemon.support.datasets import publish_dataset

HEADER = b"id,name,score\n"


async def published(site: Site, name: str) -> bool:
    return job_state(site, name) is JobState.PUBLISHED


async def test_second_daemon_on_the_same_state_file_refuses_to_start(
    site: Site, client: DsmapiClient, http: Http, daemon_process: DaemonProcess
) -> None:
    ff = await publish_dataset(client, HEADER + b"0,seed,0\n")
    site.map(ff, action="update")
    config = str(site.write_config())
    await daemon_process.start()
    assert daemon_process.process is not None
    first_pid = daemon_process.process.pid

    second = await run_cli("run", "-c", config, within=30)

    assert second.code == 3, second
    refusals = [line for line in second.err.splitlines() if "in use by another dsmsyncd" in line]
    assert len(refusals) == 1, second.err
    message = json.loads(refusals[0])["event"]
    assert f"state database {site.state_db} is in use by another dsmsyncd (pid {first_pid}" in (
        message
    )
    assert "stop that daemon first, or give this one its own [state] url" in message

    # The first daemon was not disturbed: it publishes, and read-only commands work beside it.
    site.drop_file("after.csv", HEADER + b"1,ann,10\n2,bob,20\n")
    await wait_until(lambda: published(site, "after.csv"), within=30, what="after.csv published")
    assert await http.count(ff) == 3
    status = await run_cli("status", "-c", config, "--json")
    assert status.code == 0, status
    assert [job["file"] for job in json.loads(status.out)] == ["drop:after.csv"]
    check = await run_cli("check-config", "-c", config)
    assert check.code == 0, check


async def test_lock_of_a_killed_daemon_does_not_outlive_it(
    site: Site, client: DsmapiClient, http: Http, daemon_process: DaemonProcess
) -> None:
    ff = await publish_dataset(client, HEADER + b"0,seed,0\n")
    site.map(ff, action="update")
    site.write_config()
    await daemon_process.start()
    daemon_process.kill()
    assert await daemon_process.wait(30) == -9

    await daemon_process.start()  # the kernel released the lock with the dead process
    site.drop_file("late.csv", HEADER + b"1,ann,10\n")
    await wait_until(lambda: published(site, "late.csv"), within=30, what="late.csv published")
    assert await http.count(ff) == 2
