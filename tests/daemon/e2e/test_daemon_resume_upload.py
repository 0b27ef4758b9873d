"""``dsmsyncd run`` killed with SIGKILL halfway through an upload resumes it: the restart
sends at most 60 % of the file, and every row lands exactly once.

The daemon reaches the server through ``link_proxy``, which forwards exactly half the
file's size and then holds the link: "halfway" is a byte count, not a moment. The
daemon is killed while held, the held connections are cut (their bytes never reach
the server), and what the proxy forwards after the restart is what the restart cost.
The dataset is an append dataset without a row identifier, so a row sent twice would
show in the exact count. Once with a drop folder, once with a bucket on moto.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.processes import DaemonProcess, wait_until
from tests.daemon.e2e.site import Site, big_csv, job_state
from tests.daemon.e2e.test_daemon_restart import wait_for_state
from tests.daemon.support.datasets import publish_dataset
from tests.daemon.support.link_proxy import LinkProxy, link_proxy
from tests.daemon.support.moto_server import MotoServer, new_bucket_name

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

ROWS = 120_000  # about 3.5 MB
CHUNK = 64 * 1024  # about 59 chunks
AT_MOST_AFTER_RESTART = 0.60
PAGE = 50_000  # the server's largest $limit


async def kill_halfway_and_restart(
    site: Site,
    daemon: DaemonProcess,
    proxy: LinkProxy,
    size: int,
    drop: Callable[[], Awaitable[object]],
) -> int:
    """Start the daemon, ``drop`` the file, let half of ``size`` through and kill the
    daemon; restart it until the file is published. What the server received since."""
    await daemon.start()
    proxy.hold_after(size // 2)
    await drop()
    async with asyncio.timeout(60):
        await proxy.held.wait()
    # What the server acknowledged is recorded before the kill, as on a slow link,
    # where a chunk takes far longer to send than its record to write.
    await wait_until(lambda: recorded_chunks(site, len(proxy.chunk_requests) - 1), what="records")
    daemon.kill()
    assert await daemon.wait(10) == -9
    assert job_state(site, "big.csv") is JobState.UPLOADING
    proxy.cut_held()
    before = proxy.sent
    proxy.lift()
    await daemon.start()
    await wait_for_state(site, "big.csv", (JobState.PUBLISHED,))
    return proxy.sent - before


async def recorded_chunks(site: Site, at_least: int) -> bool:
    with contextlib.closing(
        sqlite3.connect(f"file:{site.state_db}?mode=ro", uri=True, timeout=5)
    ) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM job_upload_chunks").fetchone()
    return int(count) >= at_least


async def assert_every_row_once(http: Http, ff: str) -> None:
    assert await http.count(ff) == ROWS + 1
    ids: list[int] = []
    for offset in range(0, ROWS + 1, PAGE):
        page = {"$select": "id", "$order": "id", "$limit": str(PAGE), "$offset": str(offset)}
        ids += [int(row["id"]) for row in await http.rows(ff, **page)]
    assert ids == list(range(-1, ROWS))
    assert await http.open_revisions(ff) == []


async def configured(
    site: Site, client: DsmapiClient, server: RunningServer, proxy: LinkProxy, **mapping: str
) -> str:
    server.state.preferred_chunk_size = CHUNK
    ff = await publish_dataset(client, b"id,name,score\n-1,seed,0\n")
    site.server_url = proxy.url
    site.map(ff, action="update", **mapping)
    site.limits = {"max_concurrent_chunks": 1}
    site.write_config()
    return ff


async def test_daemon_killed_halfway_through_an_upload_sends_only_the_rest(
    site: Site,
    client: DsmapiClient,
    server: RunningServer,
    http: Http,
    daemon_process: DaemonProcess,
) -> None:
    data = big_csv(ROWS)
    async with link_proxy(server.url) as proxy:
        ff = await configured(site, client, server, proxy)

        async def drop() -> None:
            site.drop_file("big.csv", data)

        after = await kill_halfway_and_restart(site, daemon_process, proxy, len(data), drop)
    assert after <= AT_MOST_AFTER_RESTART * len(data), (after, len(data))
    await assert_every_row_once(http, ff)
    assert "resuming the upload" in daemon_process.log.read_text()


@pytest.mark.usefixtures("aws_env")
async def test_daemon_killed_halfway_through_a_bucket_upload_sends_only_the_rest(
    site: Site,
    client: DsmapiClient,
    server: RunningServer,
    http: Http,
    daemon_process: DaemonProcess,
    moto: MotoServer,
    s3: S3Client,
) -> None:
    data = big_csv(ROWS)
    bucket = new_bucket_name()
    await s3.create_bucket(Bucket=bucket)
    site.source = moto.source_keys(bucket, "in/")
    async with link_proxy(server.url) as proxy:
        ff = await configured(
            site, client, server, proxy, archive_dir="archive/", quarantine_dir="quarantine/"
        )

        async def put() -> None:
            await s3.put_object(Bucket=bucket, Key="in/big.csv", Body=data)

        after = await kill_halfway_and_restart(site, daemon_process, proxy, len(data), put)
    assert after <= AT_MOST_AFTER_RESTART * len(data), (after, len(data))
    await assert_every_row_once(http, ff)
    assert "resuming the upload" in daemon_process.log.read_text()
