"""SIGHUP: taking a new configuration while jobs run, as one switch with no await inside.

A mixin of :class:`~dsmsyncd.daemon.lifecycle.Daemon`, kept apart so that the
lifecycle module reads as startup, main loop and drain, and so that what a reload
swaps (the configuration, the client, the sources, the job runner) is listed in one
place. It names the daemon's parts it uses as annotations only; the daemon sets them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dsmsyncd.config.job_log import reloaded_with_job_log
from dsmsyncd.config.load import load_config
from dsmsyncd.config.schema import Config
from dsmsyncd.config.secrets import ConfigError
from dsmsyncd.daemon.discovery import Discovery
from dsmsyncd.daemon.lease import Lease
from dsmsyncd.daemon.notifications import Notifications
from dsmsyncd.daemon.scheduler import Scheduler
from dsmsyncd.daemon.source_set import Sources
from dsmsyncd.daemon.status import SimpleStatus
from dsmsyncd.daemon.supervisor import Supervisor
from dsmsyncd.daemon.target import ClientLease, opened_client_for_reload
from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.dsmapi.rate_limit import TokenBucket
from dsmsyncd.sources.base import Source, SourceError
from dsmsyncd.state import Job, StateStore

logger = logging.getLogger("dsmsyncd.daemon.reload")


class Reload:
    """``apply_config`` and what it needs; mixed into the daemon."""

    config_path: Path
    config: Config
    draining: bool
    stop: asyncio.Event
    notifications: Notifications
    upload_rate: TokenBucket
    _store: StateStore | None
    _client: DsmapiClient | None
    _lease: ClientLease | None
    _status: SimpleStatus | None
    _scheduler: Scheduler | None
    _sources: Sources
    _tasks: Supervisor
    _discovery: Discovery
    _reload_lock: asyncio.Lock

    if TYPE_CHECKING:  # provided by the daemon this is mixed into

        def _job_runner(self) -> Callable[[Job], Awaitable[Job]]: ...

        def _on_retry(self, reason: str, attempt: int, delay: float) -> None: ...

        async def _release_held(self) -> None: ...

    def _handle_reload(self) -> None:
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            logger.error("reload refused, keeping the running configuration:\n%s", exc)
            return
        self._tasks.spawn("reload", self.apply_config(new))

    async def apply_config(self, new: Config) -> None:
        """Take a new configuration: mappings and limits at once; changed sources restart.

        What may fail or wait (a client for a changed ``[target]``, the new sources) is
        made first; then the configuration, the client, the sources and the job runner
        change together, with no await between, so no job is routed by new mappings and
        run with the old target or sources. Jobs in flight finish with the client and
        sources they started with (their revision and their object live there), which
        close after them.
        """
        new = reloaded_with_job_log(new, self.config.log_dataset)
        async with self._reload_lock:
            old_url, old_lease = self.config.target.url, self._lease
            switch = old_lease is not None and new.target != self.config.target
            client = None
            if switch:
                client = await opened_client_for_reload(
                    new, on_retry=self._on_retry, upload_rate=self.upload_rate
                )
                if client is None:
                    return
            live = self._store is not None and not self.draining
            sources, retired = await self._next_sources(new) if live else (self._sources, {})
            if client is not None:
                self._client, self._lease = client, ClientLease(client)
                if self._status is not None:
                    self._status.forget_target()  # probe the new target next time
            old, self.config = self.config, new
            self.upload_rate.set_rate(new.limits.max_upload_rate)  # uploads in flight too
            self._use_sources(sources, retired)
            if self._scheduler is not None:
                self._scheduler.max_concurrent_jobs = new.limits.max_concurrent_jobs
                self._scheduler.run_job = self._job_runner()
                self._scheduler.wake()  # active_hours may have changed: look again
            if old_lease is not None and switch:
                logger.info(
                    "[target] changed from %s to %s: jobs starting now use the new target; "
                    "%d job(s) in flight finish on the old one, whose client closes after them",
                    old_url,
                    new.target.url,
                    old_lease.users,
                )
                self._tasks.spawn("retire-client", old_lease.retire())
            logger.info("configuration reloaded from %s", self.config_path)
            if live:
                assert self._store is not None
                await self.notifications.reload(old, new, self._store)
                await self._release_held()

    async def _next_sources(self, new: Config) -> tuple[Sources, dict[str, Lease[Source]]]:
        """The sources of ``new``: unchanged ones carried over, running; the others built
        and started, their predecessors' discovery stopped (they are retired next)."""
        sources, retired = self._sources.reloaded(new)
        await self._discovery.stop(retired)
        try:
            await sources.start()
        except SourceError as exc:  # discovery keeps trying to start it, under supervision
            logger.error("a source did not start after the reload: %s", exc)
        return sources, retired

    def _use_sources(self, sources: Sources, retired: dict[str, Lease[Source]]) -> None:
        """Discover with the new sources; close each retired one after its last job."""
        previous, self._sources = self._sources, sources
        for name, lease in retired.items():
            logger.info("source %s replaced: it closes after its %d job(s)", name, lease.users)
            self._tasks.spawn(f"retire-source:{name}", lease.retire())
        if not self.stop.is_set():
            for name, source in sources.items():
                if not sources.kept_from(previous, name):
                    self._discovery.start(name, source)
