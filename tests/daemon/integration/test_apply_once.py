"""The apply request is sent once: a dropped connection is resolved by reading the revision.

A real TCP proxy on loopback sits between the pipeline's client and the real server
and drops the connection of the apply request (issue 11 #8). aiohttp used to resend
the PUT on a fresh connection by itself; now the pipeline reads the revision and
follows the apply job the server started, or retries later when there is none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import JobState
from tests.daemon.integration.harness import Harness
from tests.daemon.integration.proxy import ApplyDropper, apply_dropper
from tests.daemon.support.datasets import count_rows, robot_client


@dataclass(frozen=True)
class Proxied:
    """The proxy that drops an apply, and the daemon's client talking through it."""

    proxy: ApplyDropper
    client: DsmapiClient


@pytest.fixture
async def proxied(server: RunningServer) -> AsyncIterator[Proxied]:
    async with apply_dropper(server.url) as proxy, robot_client(proxy.url) as client:
        yield Proxied(proxy, client)


async def _published_events(harness: Harness, job_id: int) -> int:
    events = await harness.store.events(job_id)
    return sum(
        e.state is JobState.PUBLISHED and e.previous_state is JobState.APPLYING for e in events
    )


async def test_apply_dropped_after_the_server_took_it_is_followed_not_resent(
    harness: Harness, client: DsmapiClient, proxied: Proxied
) -> None:
    ff, job = await harness.seeded_job()
    proxy = proxied.proxy
    proxy.drop_after_server()
    done = await harness.pipeline(client=proxied.client).run(job)

    assert proxy.dropped == 1
    assert proxy.applies_seen == 1
    assert proxy.applies_forwarded == 1
    assert done.state is JobState.PUBLISHED, done.error
    revision = await client.get_revision(ff, done.revision_seq or 0)
    assert len(revision.task_sets) == 1
    assert done.task_set_id == revision.task_sets[0]["id"]
    assert await count_rows(client, ff) == 4
    assert await _published_events(harness, job.id) == 1


async def test_apply_dropped_before_the_server_saw_it_is_applied_once_on_retry(
    harness: Harness, client: DsmapiClient, proxied: Proxied
) -> None:
    ff, job = await harness.seeded_job()
    proxy = proxied.proxy
    proxy.drop_before_server()
    first = await harness.pipeline(client=proxied.client).run(job)
    assert first.state is JobState.FAILED_RETRYABLE
    assert first.revision_seq is not None
    assert await count_rows(client, ff) == 2
    done = await harness.pipeline(client=proxied.client).run(first)

    assert (proxy.dropped, proxy.applies_seen, proxy.applies_forwarded) == (1, 2, 1)
    assert done.state is JobState.PUBLISHED, done.error
    assert done.revision_seq == first.revision_seq
    revision = await client.get_revision(ff, done.revision_seq or 0)
    assert len(revision.task_sets) == 1
    assert await count_rows(client, ff) == 4
    assert await _published_events(harness, job.id) == 1
