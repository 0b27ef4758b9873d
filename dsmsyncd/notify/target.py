"""One ``[[notify]]`` table at work: its own bounded queue, rate limit and worker.

Each target has a worker of its own, so a receiver that hangs delays only its own
messages, never another target's and never a job: ``offer`` puts a message in the
queue without waiting, and a full queue drops it with a count (``dropped``). The worker
takes messages in order; the rate limit decides whether each is sent or held back
(``suppressed``); a sent one goes out on the target's channels at once, each tried up
to ``attempts`` times with a doubling back-off (``retried``), then ``sent`` or
``failed``, logged either way. While something is held back the worker also wakes when
the window reopens, to send the summary.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.channels import Channel, DeliveryFailed
from dsmsyncd.notify.limit import HourlyLimit
from dsmsyncd.notify.message import Message, summary_of
from dsmsyncd.notify.progress import NotifyOutcome, Progress

logger = logging.getLogger("dsmsyncd.notify")

QUEUE_SIZE = 100


class Target:
    def __init__(
        self,
        label: str,
        config: NotifyConfig,
        channels: list[Channel],
        progress: Progress,
        clock: Callable[[], float],
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.label = label
        self.config = config
        self.channels = channels
        self._progress = progress
        self._limit = HourlyLimit(config.max_per_hour, clock)
        # None in the queue only wakes the worker to look at the clock (``poke``).
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(queue_size)

    def offer(self, message: Message) -> None:
        """Queue ``message`` for delivery, or drop it (counted) if the queue is full."""
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._count("dropped")
            logger.warning(
                "notify %s: queue full (%d), %s notification dropped",
                self.label,
                self._queue.maxsize,
                message.event,
            )
            return
        self._progress.queued()

    def poke(self) -> None:
        """Have the worker look at the clock now (the rate limit may have reopened)."""
        if not self._queue.full():
            self._queue.put_nowait(None)

    @property
    def suppressed(self) -> int:
        """Events held back by the rate limit and not summed up in a message yet."""
        return sum(self._limit.suppressed.values())

    async def run(self) -> None:
        """The worker: forever, the next message (or the window reopening), delivered."""
        while True:
            item = await self._next()
            try:
                held = self._limit.summary_due()
                if held is not None:
                    await self._deliver(summary_of(held, self.config.max_per_hour))
                if item is not None:
                    await self._handle(item)
            finally:
                if item is not None:
                    self._progress.done()

    async def _next(self) -> Message | None:
        wait = self._limit.reopens_in()
        if wait is None:
            return await self._queue.get()
        try:
            async with asyncio.timeout(wait):
                return await self._queue.get()
        except TimeoutError:
            return None

    async def _handle(self, message: Message) -> None:
        if self._limit.take():
            await self._deliver(message)
            return
        self._limit.suppress(message.event)
        self._count("suppressed")
        logger.info(
            "notify %s: rate limit of %d per hour reached, %s notification held back",
            self.label,
            self.config.max_per_hour,
            message.event,
        )

    async def _deliver(self, message: Message) -> None:
        await asyncio.gather(*(self._deliver_on(channel, message) for channel in self.channels))

    async def _deliver_on(self, channel: Channel, message: Message) -> None:
        delay = self.config.retry_delay
        attempts = self.config.attempts
        for attempt in range(1, attempts + 1):
            try:
                await _send(channel, message)
            except DeliveryFailed as exc:
                if attempt == attempts:
                    self._progress.failed(self.label, str(exc))
                    self._progress.outcome(self.label, channel.name, "failed")
                    logger.warning(
                        "notify %s: %s notification not delivered by %s after %d attempt(s): %s",
                        self.label,
                        message.event,
                        channel.name,
                        attempts,
                        exc,
                    )
                    return
                self._progress.outcome(self.label, channel.name, "retried")
                logger.info(
                    "notify %s: %s attempt %d failed, retrying in %gs: %s",
                    self.label,
                    channel.name,
                    attempt,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay *= 2
            else:
                self._progress.outcome(self.label, channel.name, "sent")
                logger.info("notify %s: %s sent by %s", self.label, message.event, channel.name)
                return

    def _count(self, outcome: NotifyOutcome) -> None:
        for channel in self.channels:
            self._progress.outcome(self.label, channel.name, outcome)


async def _send(channel: Channel, message: Message) -> None:
    """One attempt; a fault the channel did not foresee fails the attempt like any other
    (named by its type only: its text might quote the webhook URL), so a notification
    never turns into a failing daemon task or a 503 from /readyz."""
    try:
        await channel.send(message)
    except DeliveryFailed:
        raise
    except Exception as exc:
        raise DeliveryFailed(f"{channel.name}: unexpected {type(exc).__name__}") from None
