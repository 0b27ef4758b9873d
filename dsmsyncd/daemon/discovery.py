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
from dsmsyncd.state import Job, NewJob, StateStore

logger = logging.getLogger("dsmsyncd.daemon.discovery")

Accept = Callable[[list[Candidate]], Awaitable[object]]

# At most this many candidates are recorded in one transaction of the state store.
RECORD_BATCH_MAX = 500


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
        """Record what the source hands over, as many at once as are waiting.

        A look at a source hands over its stable files one after another without
        pausing; a pump takes them into a queue while the previous batch is recorded, so
        a pass over 10,000 new files costs about 20 commits, not 10,000. What the queue
        holds when discovery is cancelled is not lost: discovery stops only with the
        daemon or with a retired source, and either way a fresh look finds it again.
        """
        queue: asyncio.Queue[Candidate | BaseException | None] = asyncio.Queue(RECORD_BATCH_MAX)
        pump = asyncio.create_task(_pump(source, self._stop, queue), name="discovery-pump")
        try:
            ended = False
            while not ended:
                batch, ended = await _next_batch(queue)
                if batch:
                    await self._record(batch)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def _record(self, candidates: list[Candidate]) -> None:
        task = self.task_name(candidates[0].source)
        while True:
            try:
                await self._accept(candidates)
            except Exception as exc:
                doing = f"cannot record {candidates[0].relative_path} as a job"
                if len(candidates) > 1:
                    doing += f" (nor {len(candidates) - 1} other file(s) found with it)"
                if await self._tasks.stopped_within(self._tasks.failed(task, exc, doing)):
                    return
                continue
            self._tasks.recovered(task)
            return


async def _pump(
    source: Source, stop: asyncio.Event, queue: asyncio.Queue[Candidate | BaseException | None]
) -> None:
    """The source's candidates into ``queue``; then None, or the error that ended it."""
    try:
        async for candidate in source.candidates(stop):
            await queue.put(candidate)
    except Exception as exc:
        await queue.put(exc)
        return
    await queue.put(None)


async def _next_batch(
    queue: asyncio.Queue[Candidate | BaseException | None],
) -> tuple[list[Candidate], bool]:
    """The candidates waiting (at least one, unless the source ended), and whether the
    source ended; its error is raised once the candidates before it are recorded."""
    batch: list[Candidate] = []
    item = await queue.get()
    while isinstance(item, Candidate):
        batch.append(item)
        if len(batch) >= RECORD_BATCH_MAX or queue.empty():
            return batch, False
        item = queue.get_nowait()
    if isinstance(item, BaseException):
        if batch:
            await queue.put(item)  # raised by the next call, after this batch is recorded
            return batch, False
        raise item
    return batch, True


async def record_jobs(
    store: StateStore,
    candidates: Sequence[Candidate],
    mappings: Sequence[MappingConfig],
    metrics: Metrics,
    unmatched: UnmatchedLog,
) -> list[Job | None]:
    """Record stable files as jobs of their mappings' datasets, with each mapping's
    snapshot, in one transaction; per file, None when it is known already, or when no
    mapping takes it (said once)."""
    routed = [route(c.source, c.relative_path, mappings) for c in candidates]
    for candidate, found in zip(candidates, routed, strict=True):
        if found is None and unmatched.first_time(candidate):
            metrics.unmatched(candidate.source)
    new = [
        NewJob(
            *(c.source, c.relative_path, c.identity, c.size, c.mtime, found[1].dataset, found[0]),
            routing=routing_snapshot(found[1]),
        )
        for c, found in zip(candidates, routed, strict=True)
        if found is not None
    ]
    added = iter(await store.add_jobs(new))
    jobs: list[Job | None] = []
    for candidate, found in zip(candidates, routed, strict=True):
        job = None if found is None else next(added)
        jobs.append(job)
        if job is not None:
            metrics.discovered(candidate.source)
            logger.info(
                "discovered %s for %s", candidate.relative_path, job.dataset, extra={"job": job.id}
            )
    return jobs
