"""A notify target's worker against a real webhook receiver on loopback, with the clock
in the test's hands: the rate limit holds back, then sums up once the hour reopens; a
full queue drops and counts instead of waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.channels import Webhook
from dsmsyncd.notify.limit import HourlyLimit
from dsmsyncd.notify.message import Message, Scrubber
from dsmsyncd.notify.progress import Progress
from dsmsyncd.notify.target import Target
from dsmsyncd.observe.metrics import Metrics
from tests.daemon.support.fake_clock import FakeClock
from tests.daemon.support.receivers import WebhookReceiver, webhook_receiver


def message(n: int) -> Message:
    fields = {"event": "quarantined", "file": f"f{n}.csv", "text": f"f{n}.csv quarantined"}
    return Message("quarantined", f"f{n}", f"f{n}.csv quarantined", fields)


@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with webhook_receiver() as receiver:
        yield receiver


def build(
    hook_url: str, session: aiohttp.ClientSession, clock: FakeClock, **options: int
) -> tuple[Target, Progress]:
    """A target "chat" posting to ``hook_url`` at most twice an hour, and its progress."""
    config = NotifyConfig.model_validate(
        {"webhook_url": hook_url, "events": ["quarantined"], "max_per_hour": 2}
    )
    channel = Webhook(hook_url, session, 5.0, Scrubber([]))
    progress = Progress(Metrics())
    return Target("chat", config, [channel], progress, clock, **options), progress


async def test_rate_limit_sums_up_what_it_held_back_when_the_hour_reopens(
    hook: WebhookReceiver,
) -> None:
    clock = FakeClock()
    async with aiohttp.ClientSession() as session:
        target, progress = build(hook.url + "/hook", session, clock)
        worker = asyncio.create_task(target.run())
        for n in range(5):
            target.offer(message(n))
        await progress.until(lambda p: p.pending == 0)
        assert [b["file"] for b in hook.bodies] == ["f0.csv", "f1.csv"]
        assert (progress.total("sent"), progress.total("suppressed")) == (2, 3)
        assert target.suppressed == 3

        clock.advance(3599)
        target.poke()
        target.offer(message(5))  # still inside the hour: held back too
        await progress.until(lambda p: p.pending == 0)
        assert len(hook.bodies) == 2

        clock.advance(1)
        target.poke()
        await hook.arrivals.until(lambda raw: len(raw) == 3)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    summary = hook.bodies[2]
    assert summary == {
        "event": "suppressed",
        "count": 4,
        "events": {"quarantined": 4},
        "text": "dsmsyncd: 4 more events suppressed in the last hour by the rate limit "
        "(max_per_hour = 2): 4 quarantined. See /status and the logs for each.",
    }
    assert target.suppressed == 0


async def test_a_full_queue_drops_and_counts_without_waiting(hook: WebhookReceiver) -> None:
    async with aiohttp.ClientSession() as session:
        target, progress = build(hook.url + "/hook", session, FakeClock(), queue_size=1)
        target.offer(message(1))
        target.offer(message(2))  # no worker yet: the queue is full, offer returns at once
        assert (progress.total("dropped"), progress.pending) == (1, 1)


def test_hourly_limit_is_a_rolling_window() -> None:
    clock = FakeClock(0.0)
    limit = HourlyLimit(2, clock)
    assert limit.take()
    clock.advance(1800)
    assert limit.take()
    assert not limit.take()
    limit.suppress("failed")
    assert limit.reopens_in() == 1800.0
    clock.advance(1800)  # the first send leaves the window; the second is still in it
    assert limit.summary_due() == {"failed": 1}
    assert not limit.take()
    assert limit.reopens_in() is None
