"""Resumable uploads on the real server: only the chunks it has not acknowledged are sent.

The client talks to the server through ``link_proxy``, which counts the chunk requests
by ``seq_num`` and can cut the connection of one. A crash is the store "dying" as it
records one chunk (``ChunkCrash``): the chunks before it were acknowledged and
recorded, that one was acknowledged but not recorded, the ones after were never sent.
The server is set to 2 KiB chunks, one at a time, so the chunk order is fixed.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import ChunkRecord, Job, JobState
from tests.daemon.integration.harness import SEED, Crash, CrashingStore, Harness
from tests.daemon.support.datasets import open_revisions, publish_dataset, robot_client
from tests.daemon.support.link_proxy import LinkProxy, link_proxy

CHUNK = 2048
ROWS = 1500  # about 27 KB: 14 chunks


def csv_rows(first: int, count: int, tag: str = "row") -> bytes:
    lines = [b"id,name\n"] + [b"%d,%s-%08d\n" % (i, tag.encode(), i) for i in range(first, count)]
    return b"".join(lines)


class ChunkCrash(CrashingStore):
    """Dies instead of recording the chunk with seq ``at``."""

    def __init__(self, harness: Harness, at: int) -> None:
        super().__init__(harness.store, lambda state, kw: False)
        self._at = at

    async def record_chunk(self, job_id: int, source_id: int, chunk: ChunkRecord) -> None:
        if chunk.seq == self._at:
            raise Crash(f"crash before recording chunk {chunk.seq}")
        await self._inner.record_chunk(job_id, source_id, chunk)


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[LinkProxy]:
    server.state.preferred_chunk_size = CHUNK
    server.state.preferred_upload_parallelism = 1
    async with link_proxy(server.url) as running:
        yield running


@pytest.fixture
async def proxied(proxy: LinkProxy) -> AsyncIterator[DsmapiClient]:
    async with robot_client(proxy.url) as signed_in:
        yield signed_in


async def crashed_job(harness: Harness, proxied: DsmapiClient, at: int) -> tuple[str, Job]:
    """A job on a seeded dataset, its upload cut where chunk ``at`` is recorded."""
    ff = await publish_dataset(harness.client, SEED)
    job = await harness.add_job(harness.mapping(ff), "big.csv", csv_rows(3, ROWS))
    with pytest.raises(Crash):
        await harness.pipeline(client=proxied, store=ChunkCrash(harness, at)).run(job)
    left = await harness.store.get_job(job.id)
    assert left.state is JobState.UPLOADING
    return ff, left


def chunk_count() -> int:
    return -(-len(csv_rows(3, ROWS)) // CHUNK)


async def assert_published_once(client: DsmapiClient, ff: str, content: bytes) -> None:
    rows = await client.read_rows(ff, {"$order": "id", "$limit": "50000"})
    expected = [line.split(b",")[0].decode() for line in (SEED + content).splitlines()]
    assert sorted(int(r["id"]) for r in rows) == sorted(int(i) for i in expected if i != "id")
    assert not await open_revisions(client, ff)


def metric(harness: Harness, name: str, *labels: str) -> float:
    value: Any = getattr(harness.metrics, name).labels(*labels)._value.get()
    return float(value)


async def test_restarted_upload_sends_only_the_chunks_not_recorded(
    harness: Harness, proxied: DsmapiClient, proxy: LinkProxy
) -> None:
    ff, left = await crashed_job(harness, proxied, at=5)
    progress = await harness.store.upload_progress(left.id)
    assert progress is not None
    assert [c.seq for c in progress.chunks] == [0, 1, 2, 3, 4]
    assert proxy.chunk_requests == {seq: 1 for seq in range(6)}
    proxy.chunk_requests.clear()

    done = await harness.pipeline(client=proxied).run(left)

    assert done.state is JobState.PUBLISHED, done.error
    assert done.revision_seq == left.revision_seq
    # Chunk 5 was acknowledged but not recorded when the store "died": sent again.
    assert proxy.chunk_requests == {seq: 1 for seq in range(5, chunk_count())}
    await assert_published_once(harness.client, ff, csv_rows(3, ROWS))
    assert metric(harness, "upload_resumes", ff) == 1
    assert metric(harness, "upload_resumed_bytes", ff) == 5 * CHUNK
    assert await harness.store.upload_progress(left.id) is None  # forgotten once committed


async def test_file_rewritten_in_place_starts_over_instead_of_mixing_versions(
    harness: Harness, proxied: DsmapiClient, caplog: pytest.LogCaptureFixture
) -> None:
    ff, left = await crashed_job(harness, proxied, at=4)
    path = harness.drop / "big.csv"
    before = path.stat()
    rewritten = csv_rows(3, ROWS, tag="new")  # the same size, other bytes
    assert len(rewritten) == before.st_size
    path.write_bytes(rewritten)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # identity unchanged

    with caplog.at_level(logging.WARNING, logger="dsmsyncd.pipeline.sync_job"):
        done = await harness.pipeline(client=proxied).run(left)

    assert done.state is JobState.PUBLISHED, done.error
    assert done.revision_seq != left.revision_seq
    assert metric(harness, "upload_restarts", ff, "content_changed") == 1
    assert metric(harness, "upload_resumes", ff) == 0
    assert any(
        "cannot resume (content_changed)" in r.getMessage() and "chunk 0" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    rows = await harness.client.read_rows(ff, {"$where": "id > 2", "$limit": "50000"})
    assert {r["name"] for r in rows} == {f"new-{i:08d}" for i in range(3, ROWS)}
    await assert_published_once(harness.client, ff, rewritten)
    assert (await harness.client.get_revision(ff, left.revision_seq or 0)).closed_at is not None


async def test_revision_discarded_on_the_server_starts_over(
    harness: Harness, proxied: DsmapiClient, caplog: pytest.LogCaptureFixture
) -> None:
    ff, left = await crashed_job(harness, proxied, at=3)
    revision = await harness.client.get_revision(ff, left.revision_seq or 0)
    await harness.client.discard_revision(revision)

    with caplog.at_level(logging.WARNING, logger="dsmsyncd.pipeline.sync_job"):
        done = await harness.pipeline(client=proxied).run(left)

    assert done.state is JobState.PUBLISHED, done.error
    assert metric(harness, "upload_restarts", ff, "revision_gone") == 1
    assert any("cannot resume (revision_gone)" in r.getMessage() for r in caplog.records)
    await assert_published_once(harness.client, ff, csv_rows(3, ROWS))


async def test_server_that_lost_the_chunks_makes_the_upload_start_over(
    harness: Harness, proxied: DsmapiClient, server: RunningServer
) -> None:
    ff, left = await crashed_job(harness, proxied, at=3)
    assert left.source_id is not None
    shutil.rmtree(server.state.uploads_dir / str(left.source_id))  # e.g. a lost data disk

    done = await harness.pipeline(client=proxied).run(left)

    assert done.state is JobState.PUBLISHED, done.error
    assert done.revision_seq != left.revision_seq
    assert metric(harness, "upload_restarts", ff, "chunks_lost") == 1
    await assert_published_once(harness.client, ff, csv_rows(3, ROWS))


@pytest.mark.parametrize("resets", [1, 2], ids=["retried-in-run", "resumed-next-run"])
async def test_connection_reset_mid_upload_resends_only_the_failed_chunk(
    harness: Harness, proxied: DsmapiClient, proxy: LinkProxy, resets: int
) -> None:
    ff = await publish_dataset(harness.client, SEED)
    job = await harness.add_job(harness.mapping(ff), "big.csv", csv_rows(3, ROWS))
    proxy.reset_chunk(6, times=resets)  # the client retries a chunk once (FAST_RETRY)

    done = await harness.pipeline(client=proxied).run(job)
    if resets == 2:
        assert done.state is JobState.FAILED_RETRYABLE
        assert done.revision_seq is not None
        done = await harness.pipeline(client=proxied).run(done)

    assert done.state is JobState.PUBLISHED, done.error
    assert proxy.resets == resets
    expected = {seq: 1 for seq in range(chunk_count())}
    expected[6] = 1 + resets
    assert proxy.chunk_requests == expected
    await assert_published_once(harness.client, ff, csv_rows(3, ROWS))
