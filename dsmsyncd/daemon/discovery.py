"""Discovery: one task per source, each stable file routed and recorded as a job.

Each source's discovery runs under the ``Supervisor`` as task ``discovery:NAME`` (the
name ``/readyz`` and ``dsmsyncd_task_failures_total`` show): a loop that dies is
restarted with back-off. A file the source hands over is offered once, so recording it
is retried here, with the same back-off and the same failing check, until it is
recorded or the daemon stops: giving up would lose the file until a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from dsmsyncd.config.schema import MappingConfig
from dsmsyncd.daemon.routing import UnmatchedLog
from dsmsyncd.daemon.supervisor import Supervisor
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.job_routing import routing_snapshot
from dsmsyncd.pipeline.routing import route
from dsmsyncd.sources.base import Candidate, Source
from dsmsyncd.state import Job, StateStore

logger = logging.getLogger("dsmsyncd.daemon.discovery")

Accept = Callable[[Candidate], Awaitable[object]]


class Discovery:
    """The discovery tasks of the daemon's sources, by source name."""

    def __init__(self, tasks: Supervisor, stop: asyncio.Event, accept: Accept) -> None:
        self._tasks = tasks
        self._stop = stop
        self._accept = accept
        self._running: set[str] = set()

    @staticmethod
    def task_name(source: str) -> str:
        return f"discovery:{source}"

    def start(self, name: str, source: Source) -> None:
        """Discover ``source``'s files until the daemon stops (or ``stop`` names it)."""
        self._running.add(name)
        self._tasks.keep(self.task_name(name), lambda: self._discover(source))

    async def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop discovering the named sources (all of them by default) and wait for it."""
        chosen = set(self._running) if names is None else self._running.intersection(names)
        self._running -= chosen
        await self._tasks.cancel([self.task_name(name) for name in chosen])

    async def _discover(self, source: Source) -> None:
        async for candidate in source.candidates(self._stop):
            await self._record(candidate)

    async def _record(self, candidate: Candidate) -> None:
        task = self.task_name(candidate.source)
        while True:
            try:
                await self._accept(candidate)
            except Exception as exc:
                doing = f"cannot record {candidate.relative_path} as a job"
                if await self._tasks.stopped_within(self._tasks.failed(task, exc, doing)):
                    return
                continue
            self._tasks.recovered(task)
            return


async def record_job(
    store: StateStore,
    candidate: Candidate,
    mappings: Sequence[MappingConfig],
    metrics: Metrics,
    unmatched: UnmatchedLog,
) -> Job | None:
    """Record a stable file as a job of its mapping's dataset, with that mapping's
    snapshot; None when it is known already, or when no mapping takes it (said once)."""
    routed = route(candidate.source, candidate.relative_path, mappings)
    if routed is None:
        if unmatched.first_time(candidate):
            metrics.unmatched(candidate.source)
        return None
    index, mapping = routed
    job = await store.add_job(
        source=candidate.source,
        relative_path=candidate.relative_path,
        identity=candidate.identity,
        size=candidate.size,
        mtime=candidate.mtime,
        dataset=mapping.dataset,
        mapping_index=index,
        routing=routing_snapshot(mapping),
    )
    if job is not None:
        metrics.discovered(candidate.source)
        logger.info(
            "discovered %s for %s", candidate.relative_path, mapping.dataset, extra={"job": job.id}
        )
    return job
