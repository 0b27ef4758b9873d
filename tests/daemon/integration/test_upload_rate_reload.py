"""``[limits] max_upload_rate`` is one bucket for the whole daemon, paid by every chunk
body slice by slice, and SIGHUP changes its rate in place: an upload waiting on it
follows the new rate. The tests read the bucket's books and state; the rate actually
held on the wire is measured in ``bench/rate_limit.py``, never timed here."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

from dsmsyncd.config import load_config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.dsmapi.chunk_payload import SLICE
from dsmsyncd.dsmapi.rate_limit import TokenBucket
from dsmsyncd.pipeline.upload import upload_blob
from dsmsyncd.server.main import RunningServer
from tests.daemon.support.blobs import BytesBlob
from tests.daemon.support.config_text import target_state_admin
from tests.daemon.support.in_loop import daemon_running
from tests.daemon.support.log_lines import watching


def _write(path: Path, server: RunningServer, root: Path, rate: str) -> None:
    limits = f'[limits]\nmax_upload_rate = "{rate}"\ndrain_timeout = "5s"\n'
    path.write_text(target_state_admin(server.url, root) + limits, encoding="utf-8")


async def _reload(daemon: Daemon, path: Path, server: RunningServer, rate: str) -> None:
    with watching("dsmsyncd.daemon.reload", "configuration reloaded", logging.INFO) as seen:
        _write(path, server, path.parent, rate)
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(seen.seen.wait(), 10)


async def test_sighup_changes_the_rate_of_the_running_bucket_and_its_waiting_upload(
    server: RunningServer, tmp_path: Path
) -> None:
    path = tmp_path / "dsmsyncd.toml"
    _write(path, server, tmp_path, "10MB/s")
    daemon = Daemon(path, load_config(path))
    async with daemon_running(daemon):
        bucket = daemon.upload_rate
        assert bucket.rate == 10_000_000
        assert daemon._client is not None
        assert daemon._client.upload_pace == bucket.take

        await _reload(daemon, path, server, "1 kB/s")
        assert daemon.upload_rate is bucket  # changed in place, not replaced
        assert (bucket.rate, bucket.capacity) == (1000, 50)
        bucket.try_take(bucket.capacity)
        # A slice now waits for its tokens: at 1 kB/s it would for over four minutes.
        upload = asyncio.create_task(bucket.take(SLICE))
        await asyncio.sleep(0)
        assert not upload.done()

        await _reload(daemon, path, server, "0")  # no limit: the waiting slice goes at once
        await asyncio.wait_for(upload, 10)
        assert bucket.rate == 0
        assert bucket.paid >= SLICE


async def test_every_byte_of_every_chunk_body_is_paid_a_slice_at_a_time(
    server: RunningServer, client: DsmapiClient
) -> None:
    bucket = TokenBucket(10**12)  # high enough never to wait: the books are the point
    slices: list[int] = []

    async def pace(amount: int) -> None:
        slices.append(amount)
        await bucket.take(amount)

    client.upload_pace = pace
    content = b"id,name\n" + b"1,abcdefgh\n" * 200_000  # 2.2 MB: several slices
    revision = await client.create_dataset({"name": "Paced"})
    source = await client.create_upload_source(revision, "paced.csv", {"parse_source": False})
    result = await upload_blob(
        client, source, BytesBlob("paced.csv", content), max_chunk_size=SLICE * 3 + 5
    )
    assert result.bytes_sent == len(content)
    assert bucket.paid == sum(slices) == len(content)
    assert max(slices) == SLICE
