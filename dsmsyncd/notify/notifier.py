"""The daemon's notifications: every finished job run in, messages out, never in the way.

``job_ended`` is the daemon's job listener: it only puts the job in a bounded intake
queue (full: dropped and counted) and returns, so publishing never waits on a receiver.
The dispatch loop reads what the run means from the state store (``events``), renders
one message per interested target and offers it to that target's own queue and worker
(``target``). The daemon runs the loops (``loops``) under its Supervisor, lets the
queues empty for a moment at shutdown (``drain``), then closes the HTTP session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.channels import Channel, Email, Webhook
from dsmsyncd.notify.events import Notice, choose, notices_of
from dsmsyncd.notify.message import Scrubber, message_of
from dsmsyncd.notify.progress import Progress
from dsmsyncd.notify.target import Target
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, JobState, StateStore

logger = logging.getLogger("dsmsyncd.notify")

INTAKE_SIZE = 1000
# A dataset's jobs looked at to tell whether a published one follows a quarantined one.
PREVIOUS_JOBS = 10


class Notifier:
    def __init__(
        self,
        configs: list[NotifyConfig],
        store: StateStore,
        metrics: Metrics,
        *,
        secrets: list[str],
        clock: Callable[[], float] = time.monotonic,
        intake_size: int = INTAKE_SIZE,
    ) -> None:
        self._store = store
        self.progress = Progress(metrics)
        self._scrub = Scrubber(secrets)
        self._intake: asyncio.Queue[Job] = asyncio.Queue(intake_size)
        self._session = aiohttp.ClientSession() if any(c.webhook_url for c in configs) else None
        self.targets = [
            Target(c.label(i), c, self._channels(c), self.progress, clock)
            for i, c in enumerate(configs)
        ]

    def _channels(self, config: NotifyConfig) -> list[Channel]:
        channels: list[Channel] = []
        if config.webhook_url is not None:
            assert self._session is not None
            url = config.webhook_url.get_secret_value()
            channels.append(Webhook(url, self._session, config.timeout, self._scrub))
        if config.smtp_host is not None:
            channels.append(Email(config, config.timeout, self._scrub))
        return channels

    def job_ended(self, job: Job) -> None:
        """The daemon's job listener: queue the job for the dispatch loop, never wait."""
        if not self.targets:
            return
        try:
            self._intake.put_nowait(job)
        except asyncio.QueueFull:
            self.progress.outcome("*", "intake", "dropped")
            logger.warning("notify: intake queue full, job %d (%s) not notified", job.id, job.state)
            return
        self.progress.queued()

    def loops(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """The tasks to keep running: the dispatch loop and one worker per target."""
        if not self.targets:
            return {}
        loops: dict[str, Callable[[], Awaitable[None]]] = {"notify": self._dispatch}
        loops |= {f"notify:{t.label}": t.run for t in self.targets}
        return loops

    async def _dispatch(self) -> None:
        while True:
            job = await self._intake.get()
            try:
                notices = await self._notices(job)
                for target in self.targets:
                    notice = choose(notices, target.config)
                    if notice is not None:
                        target.offer(message_of(notice, self._scrub))
            finally:
                self.progress.done()

    async def _notices(self, job: Job) -> list[Notice]:
        history = await self._store.events(job.id)
        previous: list[Job] = []
        if job.state is JobState.PUBLISHED and job.attempts == 0:
            previous = await self._store.recent_jobs(PREVIOUS_JOBS, job.dataset)
        return notices_of(job, history, previous)

    async def drain(self, timeout_s: float) -> bool:
        """Let queued notifications go out within ``timeout_s``; True if all did."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.progress.until(lambda p: p.pending == 0)
        left = self.progress.pending
        if left:
            logger.warning("notify: %d notification(s) still queued at shutdown", left)
        return left == 0

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def status(self) -> list[dict[str, Any]]:
        """Per target, for /status: what it wants and what became of its messages."""
        shown: list[dict[str, Any]] = []
        for target in self.targets:
            counts = {
                outcome: self.progress.total(outcome, target.label)
                for outcome in ("sent", "failed", "retried", "suppressed", "dropped")
            }
            shown.append(
                {
                    "name": target.label,
                    "channels": [c.name for c in target.channels],
                    "events": list(target.config.events),
                    "max_per_hour": target.config.max_per_hour,
                    **counts,
                    "held_back": target.suppressed,
                    "last_error": self.progress.last_error.get(target.label),
                }
            )
        return shown
