"""Connections to the target reset at random bytes, seeded: every row still lands once.

The fault proxy cuts the first ``RESETS`` connections, each at a random byte offset of
what the daemon sends (inside a request line, headers, a chunk's body, an apply),
chosen by a seeded generator. The seed is printed, and named in every assertion, so
a failure is replayed with ``DSMSYNCD_RELIABILITY_SEED=N``. The files go to an append
dataset, 1 KiB chunks, several jobs: a chunk counted twice, a file published twice or
a file lost all show in the row check.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.e2e.inprocess import running_daemon
from tests.daemon.e2e.plain_http import Http
from tests.daemon.e2e.site import Site
from tests.reliability.appended import FastRetryDaemon, append_dataset, assert_rows_once, csv
from tests.reliability.faults import FaultProxy, fault_proxy

FILES = 6
ROWS = 200  # about 2.5 KiB each: three chunks
RESETS = 25


@pytest.fixture
def seed() -> int:
    chosen = int(os.environ.get("DSMSYNCD_RELIABILITY_SEED") or random.randrange(2**31))
    print(f"random resets: DSMSYNCD_RELIABILITY_SEED={chosen}")
    return chosen


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[FaultProxy]:
    server.state.preferred_chunk_size = 1024
    async with fault_proxy(server.url) as running:
        yield running


@pytest.mark.parametrize("run", range(2))
async def test_connections_reset_at_random_bytes_publish_every_row_once(
    site: Site, client: DsmapiClient, http: Http, proxy: FaultProxy, seed: int, run: int
) -> None:
    ff = await append_dataset(client)
    site.server_url = proxy.url
    site.map(ff, skip_duplicates=False)
    site.limits.update(retry_delay="10ms", retry_max_delay="50ms")
    # Every connection is cut (up to RESETS): the client keeps one connection alive for
    # a whole job, so a coin per connection could leave a run with no reset at all.
    proxy.random_resets(random.Random(seed + run), RESETS, probability=1.0, span=3000)
    names = [f"part-{i:02d}.csv" for i in range(FILES)]
    async with running_daemon(site, FastRetryDaemon) as daemon:
        for i, name in enumerate(names):
            site.drop_file(name, csv(1000 * (i + 1), ROWS))
        jobs = await daemon.finished_jobs(FILES, within=120)
    where = f"(seed {seed + run}, {proxy.resets.done if proxy.resets else 0} resets)"
    assert sorted(job.relative_path for job in jobs) == names, where
    assert {job.state for job in jobs} == {JobState.PUBLISHED}, f"{jobs} {where}"
    assert proxy.resets is not None
    assert proxy.resets.done >= 1, where
    ids = [1000 * (i + 1) + r for i in range(FILES) for r in range(ROWS)]
    await assert_rows_once(http, ff, ids, seed=where)
