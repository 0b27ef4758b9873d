"""A full state disk stops discovery only while it lasts, and never silently.

The disk fills for real inside SQLite: ``PRAGMA max_page_count`` on the daemon's own
connection (the test-only seam: there is no unprivileged way to fill a file system
under one process) caps the database at its current size, so the next write that
needs a page fails with SQLITE_FULL, "database or disk is full", as on a full disk.
The dropped file has a long path (nested folders), so recording its job needs new
pages. While the cap holds, ``/readyz`` answers 503 naming discovery and the error,
and the failure is counted; once room is back, the same file is recorded and
published, exactly once, with no restart.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiohttp

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.state import JobState, SqliteStateStore
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.daemon.support.datasets import publish_dataset

HEADER = b"id,name,score\n"
SQLITE_MAX_PAGES = 1073741823  # SQLite's default max_page_count


async def cap_pages(store: SqliteStateStore, pages: int | None) -> int:
    """Cap the database at ``pages`` (None: its current size); the cap in force."""
    conn = store._conn  # the seam: the daemon's own connection
    assert conn is not None

    def cap(raw: sqlite3.Connection) -> int:  # one trip: between the store's transactions
        cap = pages
        if cap is None:
            cap = int(raw.execute("PRAGMA page_count").fetchone()[0])
        return int(raw.execute(f"PRAGMA max_page_count = {int(cap)}").fetchone()[0])

    return await conn.call(cap)


async def readiness(admin: str, http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{admin}/readyz") as response:
        return response.status, await response.json()


async def failures_counted(admin: str, http: aiohttp.ClientSession) -> float:
    async with http.get(f"{admin}/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith('dsmsyncd_task_failures_total{task="discovery:drop"}'):
            return float(line.split()[-1])
    return 0.0


async def test_full_state_disk_fails_readiness_then_discovery_resumes(
    site: Site, client: DsmapiClient, http: Http
) -> None:
    ff = await publish_dataset(client, HEADER + b"0,seed,0\n")
    site.map(ff, match="**/*.csv", action="update")
    deep = "/".join(f"{level:02d}" + "d" * 200 for level in range(12))
    async with running_daemon(site) as running, aiohttp.ClientSession() as session:
        daemon = running.daemon
        store = daemon._store
        assert isinstance(store, SqliteStateStore)
        admin = daemon.admin_url
        assert admin is not None

        assert (await readiness(admin, session))[0] == 200
        await cap_pages(store, None)
        site.drop_file(f"{deep}/full.csv", HEADER + b"1,ann,10\n2,bob,20\n3,cy,30\n")

        # The supervisor's state changes are events: wait for discovery's failure.
        async with asyncio.timeout(30):
            await daemon._tasks.until(lambda problems: "discovery:drop" in problems)
        status, body = await readiness(admin, session)
        assert status == 503, body
        problem = body["failing"]["discovery:drop"]
        assert f"cannot record {deep}/full.csv as a job" in problem
        assert "database or disk is full" in problem
        assert await failures_counted(admin, session) >= 1
        assert site.jobs() == []

        assert await cap_pages(store, SQLITE_MAX_PAGES) == SQLITE_MAX_PAGES  # room again
        (job,) = await running.finished_jobs(1, within=60)
        assert (job.relative_path, job.state) == (f"{deep}/full.csv", JobState.PUBLISHED)
        async with asyncio.timeout(30):
            await daemon._tasks.until(lambda problems: "discovery:drop" not in problems)
        status, body = await readiness(admin, session)
        assert (status, body["status"]) == (200, "ready"), body
    assert await http.count(ff) == 4
    assert [row["relative_path"] for row in site.jobs()] == [f"{deep}/full.csv"]
