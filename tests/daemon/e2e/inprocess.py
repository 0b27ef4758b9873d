"""The daemon in this event loop: started, handed files, drained on exit.

Finished runs arrive through the daemon's job listener, so tests wait on them as
events (``RunningDaemon.until``, ``finished_jobs``), never by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp

from dsmsyncd.config import load_config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.state import Job
from tests.daemon.e2e.site import Site
from tests.daemon.support.in_loop import daemon_running


@dataclass
class RunningDaemon:
    """The in-process daemon; ``finished`` and ``runs`` get every job run's end, in order."""

    daemon: Daemon
    finished: asyncio.Queue[Job]
    runs: list[Job] = field(default_factory=list)
    _ran: asyncio.Event = field(default_factory=asyncio.Event)

    def ran(self, job: Job) -> None:
        """The daemon's listener: a job ended a run (published, held, retrying ...)."""
        self.finished.put_nowait(job)
        self.runs.append(job)
        self._ran.set()
        self._ran = asyncio.Event()

    async def until(self, done: Callable[[list[Job]], bool], within: float = 30.0) -> None:
        """Until ``done(runs)`` holds, looked at after each run's end (no polling)."""
        try:
            async with asyncio.timeout(within):
                while not done(self.runs):
                    await self._ran.wait()
        except TimeoutError:
            raise AssertionError(f"not reached within {within:g}s; runs: {self.runs}") from None

    async def next_finished(self, within: float = 30.0) -> Job:
        try:
            async with asyncio.timeout(within):
                return await self.finished.get()
        except TimeoutError:
            raise AssertionError(f"no job finished within {within:g}s") from None

    async def finished_jobs(self, count: int, within: float = 30.0) -> list[Job]:
        """The next ``count`` jobs that end a run in a terminal state."""
        jobs: list[Job] = []
        while len(jobs) < count:
            job = await self.next_finished(within)
            if job.terminal:
                jobs.append(job)
        return jobs


@contextlib.asynccontextmanager
async def running_daemon(
    site: Site, daemon_class: type[Daemon] = Daemon
) -> AsyncIterator[RunningDaemon]:
    """The Daemon in this event loop, started; stopped (drained) on exit.

    ``daemon_class`` lets a test put a seam between two steps (a subclass that wraps
    a step), where a sleep would only make a race likely.
    """
    path = site.write_config()
    daemon = daemon_class(path, load_config(path))
    running = RunningDaemon(daemon, asyncio.Queue())
    daemon.add_listener(running.ran)
    async with daemon_running(daemon):
        yield running


async def run_files(site: Site, *files: tuple[str, bytes]) -> list[Job]:
    """The daemon started, handed ``files`` one at a time (each dropped once the run of the
    one before has ended), then stopped; the job of each file as its run ended, in order."""
    jobs: list[Job] = []
    async with running_daemon(site) as daemon:
        for name, content in files:
            site.drop_file(name, content)
            jobs += await daemon.finished_jobs(1)
    return jobs


async def admin_get(daemon: RunningDaemon, path: str) -> str:
    """The body of ``path`` on the daemon's admin endpoint (``/status``, ``/metrics`` …)."""
    assert daemon.daemon.admin_url is not None
    async with (
        aiohttp.ClientSession(daemon.daemon.admin_url) as admin,
        admin.get(path) as response,
    ):
        assert response.status == 200
        return await response.text()
