"""The daemon's notifier over its life: started with the loops under the Supervisor,
replaced when a reload changes ``[[notify]]``, given a moment to empty its queues at
shutdown. The daemon hands it every finished job run; with no ``[[notify]]`` table it
does nothing at all.
"""

from __future__ import annotations

import logging
from typing import Any

from dsmsyncd.config.fields import secret_texts
from dsmsyncd.config.schema import Config
from dsmsyncd.daemon.supervisor import Supervisor
from dsmsyncd.notify import Notifier
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import Job, StateStore

logger = logging.getLogger("dsmsyncd.daemon.notifications")

# The most the drain lets queued notifications take, within ``drain_timeout``.
NOTIFY_DRAIN_S = 5.0


class Notifications:
    def __init__(self, tasks: Supervisor, metrics: Metrics) -> None:
        self._tasks = tasks
        self._metrics = metrics
        self.notifier: Notifier | None = None

    def start(self, config: Config, store: StateStore) -> None:
        self.notifier = Notifier(config.notify, store, self._metrics, secrets=secret_texts(config))
        for name, loop in self.notifier.loops().items():
            self._tasks.keep(name, loop)

    def job_ended(self, job: Job) -> None:
        """Hand ``job`` on; a fault here is logged, never raised into the job's lane."""
        if self.notifier is None:
            return
        try:
            self.notifier.job_ended(job)
        except Exception:
            logger.exception("notify: job %d could not be queued for notification", job.id)

    async def reload(self, old: Config, new: Config, store: StateStore) -> None:
        """A changed ``[[notify]]`` replaces the notifier; what the old one had queued
        is dropped (and logged): a reload is rare, and its targets may be gone."""
        if new.notify == old.notify or self.notifier is None:
            return
        previous = self.notifier
        await self._tasks.cancel(list(previous.loops()))
        if previous.progress.pending:
            logger.warning(
                "[[notify]] changed: %d queued notification(s) of the old targets dropped",
                previous.progress.pending,
            )
        await previous.close()
        self.start(new, store)
        logger.info("[[notify]] changed: %d notify target(s) now", len(new.notify))

    async def drain(self, left_s: float) -> None:
        """Let queued notifications go out in what is ``left_s`` of ``drain_timeout``
        after the jobs' drain, at most ``NOTIFY_DRAIN_S``: the stop stays within the
        budget that systemd's and Kubernetes' stop timeouts are set above."""
        if self.notifier is not None:
            await self.notifier.drain(max(0.0, min(NOTIFY_DRAIN_S, left_s)))

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.close()
            self.notifier = None

    def status(self) -> list[dict[str, Any]]:
        return self.notifier.status() if self.notifier is not None else []
