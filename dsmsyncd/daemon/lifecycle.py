"""The daemon's lifecycle: startup → main loop → drain → shutdown, as named phases.

``startup`` opens the state store, the DSMAPI client and the admin server, probes the
target (an unreachable one is retried, and shown by ``/readyz``), starts the sources and
finishes what a crash left; only then is the daemon ready (``READY=1`` to systemd). The
main loop runs one discovery task per source, the scheduler, the notification workers
(``[[notify]]``) and systemd's watchdog pings. SIGTERM/SIGINT only set an event; the
drain then stops discovery, lets running jobs (then queued notifications) finish within
``drain_timeout`` (``/readyz`` answers 503 meanwhile), and closes everything in reverse
order. A second signal cancels at once; an interrupted job resumes at the next start.
SIGHUP reloads the configuration, keeping the old one if the new is bad (``reload.py``).

The store is opened as this daemon's replica (one per SQLite file; on PostgreSQL,
replicas share lanes by leases: ``scheduler.py``). Every task runs under the
``Supervisor``: a failure is logged, counted, shown by ``/readyz`` and retried.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsmsyncd import __version__
from dsmsyncd.blob import Blob
from dsmsyncd.config.job_log import with_job_log
from dsmsyncd.config.schema import Config
from dsmsyncd.daemon import signals
from dsmsyncd.daemon.active_hours import ActiveHours
from dsmsyncd.daemon.discovery import Discovery, record_jobs
from dsmsyncd.daemon.job_log import JobLog
from dsmsyncd.daemon.notifications import Notifications
from dsmsyncd.daemon.reload import Reload
from dsmsyncd.daemon.routing import UnmatchedLog
from dsmsyncd.daemon.scheduler import Scheduler, idle_recheck_s
from dsmsyncd.daemon.source_set import Sources
from dsmsyncd.daemon.status import CHECK_INTERVAL_S, SimpleStatus, SourceChecks, cluster_view
from dsmsyncd.daemon.supervisor import Supervisor
from dsmsyncd.daemon.target import ClientLease, client_for
from dsmsyncd.dsmapi import DsmapiClient, DsmapiError
from dsmsyncd.dsmapi.rate_limit import TokenBucket
from dsmsyncd.finalize.base import Finalizer
from dsmsyncd.observe import sdnotify
from dsmsyncd.observe.admin import OK, AdminServer, create_admin_app, start_admin
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.context import PipelineContext
from dsmsyncd.pipeline.job_routing import release_held
from dsmsyncd.pipeline.sweep import finalize_leftovers, leftover_datasets
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.sources.base import Candidate, SourceError
from dsmsyncd.state import (
    Job,
    JobState,
    ReplicaIdentity,
    StateStore,
    StateStoreError,
    default_replica_name,
    open_state_store,
)

logger = logging.getLogger("dsmsyncd.daemon.lifecycle")


class StartupFailed(Exception):
    """The daemon could not start; the message is the one-line reason (a state store that
    cannot be opened or is too new, an admin port in use, a bad source …). What had
    started is shut down again before it is raised."""


class Daemon(Reload):
    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.config = with_job_log(config)
        self.metrics = Metrics()
        self.started_at = datetime.now(UTC)
        self.draining = False
        self.stop = asyncio.Event()
        self.started = asyncio.Event()
        self._store: StateStore | None = None
        self._client: DsmapiClient | None = None
        self._lease: ClientLease | None = None  # the client new jobs run with
        self._status: SimpleStatus | None = None
        self._admin: AdminServer | None = None
        self._scheduler: Scheduler | None = None
        self._sources = Sources({}, {})
        self._source_checks = SourceChecks(self.metrics)
        self._tasks = Supervisor(self.metrics, self.stop)
        self._discovery = Discovery(self._tasks, self.stop, self.accept_many)
        self._reload_lock = asyncio.Lock()
        self._unmatched = UnmatchedLog()
        self._signals = 0
        self._listeners: list[Callable[[Job], object]] = []
        self.notifications = Notifications(self._tasks, self.metrics)
        log = self.config.log_dataset  # [log_dataset] is read at start only
        self._job_log = JobLog(log, self.metrics) if log is not None else None
        if self._job_log is not None:
            self.add_listener(self._job_log.record)
        # Every client of this daemon pays it; a reload changes its rate in place.
        self.upload_rate = TokenBucket(config.limits.max_upload_rate)
        self.active_hours = ActiveHours(lambda: self.config)  # read at each look

    def add_listener(self, listener: Callable[[Job], object]) -> None:
        """Call ``listener(job)`` with every job that ends a run (demo, tests, hooks)."""
        self._listeners.append(listener)

    @property
    def admin_url(self) -> str | None:
        return self._admin.url if self._admin is not None else None

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> int:
        """Start, serve until ``stop`` is set, drain and shut down; 0 once stopped.

        Raises ``StartupFailed`` when the daemon cannot start (the CLI turns it into
        its startup-failure exit code and one line of log)."""
        try:
            await self.startup()
        except (DsmapiError, SourceError, StateStoreError, OSError, ValueError) as exc:
            await self.shutdown()
            raise StartupFailed(str(exc)) from exc
        try:
            await self.main_loop()
        finally:
            await self.shutdown()
        return 0

    async def startup(self) -> None:
        signals.install(self._handle_exit, self._handle_reload)
        state = self.config.state
        replica = ReplicaIdentity(state.replica or default_replica_name(), state.lease_timeout)
        store = open_state_store(state.url, password=state.password_text, replica=replica)
        self._store = store
        await store.open()
        self.notifications.start(self.config, store)
        self._client = client_for(
            self.config, on_retry=self._on_retry, upload_rate=self.upload_rate
        )
        await self._client.__aenter__()
        self._lease = ClientLease(self._client)
        self._status = self._status_provider(self._store)
        admin = self.config.admin
        self._admin = await start_admin(
            create_admin_app(self._status, self.metrics), admin.host, admin.port
        )
        target = await self._status.check_target()
        if target != OK:
            logger.warning("target not reachable yet: %s (will keep trying)", target)
        if self._job_log is not None:
            await self._job_log.open()
        self._sources = Sources.build(self.config)
        await self._sources.start()
        leftovers = await leftover_datasets(self._store, known_sources=set(self._sources))
        await release_held(self._store, self.config.mapping)
        self._scheduler = Scheduler(
            self._store,
            self._job_runner(),
            self.metrics,
            max_concurrent_jobs=self.config.limits.max_concurrent_jobs,
            # Under a lane's lease: move the files of jobs finished before a crash.
            sweep=lambda ds: finalize_leftovers(
                store,
                self.config.mapping,
                self._finalizer_for,
                known_sources=set(self._sources),
                dataset=ds,
            ),
            idle_recheck_s=idle_recheck_s(self.config.state),
            gate=self.active_hours.opens_at,
        )
        self._scheduler.sweep_first(leftovers)
        self.metrics.replica_info.labels(replica.name).set(1)
        logger.info(
            "dsmsyncd %s started: %d source(s), %d mapping(s), admin on %s",
            __version__,
            len(self._sources),
            len(self.config.mapping),
            self._admin.url,
        )
        sdnotify.ready()
        self.started.set()

    async def main_loop(self) -> None:
        scheduler = self._scheduler
        assert scheduler is not None
        for name, source in self._sources.items():
            self._discovery.start(name, source)
        store = self._store
        assert store is not None
        self._tasks.keep("scheduler", lambda: scheduler.run(self.stop))
        # Leases are renewed until the drain is over, not until the stop signal: the
        # jobs finishing during the drain still hold their lanes.
        drained = asyncio.Event()
        self._tasks.keep("leases", lambda: scheduler.keep_leases(drained))
        if (job_log := self._job_log) is not None:
            self._tasks.keep("job-log", lambda: job_log.run(store, drained))
        self._tasks.keep("work-notifications", lambda: store.watch_work(scheduler.wake))
        self._keep_watchdog()
        await self.stop.wait()
        self.draining = True
        sdnotify.stopping()
        logger.info("draining: no new jobs; waiting up to %.0fs", self.config.limits.drain_timeout)
        await self._discovery.stop()
        drain_ends = asyncio.get_running_loop().time() + self.config.limits.drain_timeout
        finished = await scheduler.drain(self.config.limits.drain_timeout)
        await self.notifications.drain(drain_ends - asyncio.get_running_loop().time())
        drained.set()
        await self._tasks.wait("leases")
        await self._tasks.wait("job-log")
        await self._tasks.wait("scheduler")
        logger.info("drained", extra={"all_jobs_finished": finished})

    async def shutdown(self) -> None:
        """Release resources in reverse order of acquisition."""
        signals.remove()
        await self._tasks.finish_oneshots(self.config.limits.drain_timeout)
        await self._tasks.cancel()
        await self.notifications.close()
        await self._sources.close()
        if self._admin is not None:
            await self._admin.stop()
            self._admin = None
        if self._client is not None:
            await self._client.aclose()
            self._client = self._lease = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    def _keep_watchdog(self) -> None:
        """Under ``WatchdogSec=``, ping systemd at half the interval while the state store
        answers: a daemon whose loop or store hangs stops pinging and is restarted."""
        interval = sdnotify.watchdog_interval()
        status = self._status
        if interval is not None and status is not None:
            self._tasks.keep(
                "watchdog", lambda: sdnotify.keep_watchdog(interval, status.store_answers)
            )

    # -- discovery -------------------------------------------------------------------

    async def accept(self, candidate: Candidate) -> Job | None:
        """Record a stable file as a job of its mapping's dataset, or log that nothing maps it."""
        (job,) = await self.accept_many([candidate])
        return job

    async def accept_many(self, candidates: list[Candidate]) -> list[Job | None]:
        """``accept`` for files found together, recorded in one transaction."""
        assert self._store is not None
        assert self._scheduler is not None
        mappings = self.config.mapping
        jobs = await record_jobs(self._store, candidates, mappings, self.metrics, self._unmatched)
        if any(job is not None for job in jobs):
            self._scheduler.wake()
        return jobs

    # -- pipeline wiring ---------------------------------------------------------------

    def _job_runner(self) -> Callable[[Job], Awaitable[Job]]:
        """Runs jobs with today's client and sources; a job keeps those it started with."""
        sources = self._sources
        pipeline = Pipeline(self._pipeline_context(sources))
        lease = self._lease
        assert lease is not None

        async def run(job: Job) -> Job:
            async with lease.use(), sources.use(job.source):
                finished = await pipeline.run(job)
            if finished.state is JobState.HELD and pipeline.ctx.mappings is not self.config.mapping:
                # Held by a pipeline built before a reload that may have brought the
                # mapping back: the reload's release did not see the job yet.
                await self._release_held()
            for listener in self._listeners:
                listener(finished)
            self.notifications.job_ended(finished)
            return finished

        return run

    def _pipeline_context(self, sources: Sources) -> PipelineContext:
        assert self._client is not None
        assert self._store is not None
        return PipelineContext(
            client=self._client,
            store=self._store,
            metrics=self.metrics,
            mappings=self.config.mapping,
            open_blob=lambda job: self._open_blob(job, sources),
            finalizer_for=lambda job: self._finalizer_for(job, sources),
            open_beside=sources.open_beside,
            chunk_limit=asyncio.Semaphore(self.config.limits.max_concurrent_chunks),
            retry_base_s=self.config.limits.retry_delay,
            retry_max_s=self.config.limits.retry_max_delay,
            max_read_attempts=self.config.limits.max_read_attempts,
        )

    def _open_blob(self, job: Job, sources: Sources | None = None) -> Blob:
        """The job's bytes, from ``sources`` (the generation the job started with)."""
        return (self._sources if sources is None else sources).open_blob(job)

    def _finalizer_for(self, job: Job, sources: Sources | None = None) -> Finalizer:
        return (self._sources if sources is None else sources).finalizer(job)

    def _on_retry(self, reason: str, attempt: int, delay: float) -> None:
        self.metrics.retried(reason)

    async def _release_held(self) -> None:
        """Jobs held for want of a mapping go back to their lanes if the config has it."""
        assert self._store is not None
        if await release_held(self._store, self.config.mapping) and self._scheduler:
            self._scheduler.wake()

    # -- readiness and status --------------------------------------------------------

    def _status_provider(self, store: StateStore) -> SimpleStatus:
        return SimpleStatus(
            store,
            draining=lambda: self.draining,
            probe_target=self._probe_target,
            sources=lambda: [{"name": s.name, "url": s.url} for s in self.config.source],
            ready_checks=self._ready_checks,
            extra=self._status_extra,
            target_url=lambda: self.config.target.url,
            waiting=self.active_hours.waiting_note,
            started_at=self.started_at,
            target_ttl=CHECK_INTERVAL_S,
        )

    async def _probe_target(self) -> None:
        assert self._client is not None
        await self._client.current_user(retry=False)

    async def _ready_checks(self) -> dict[str, str]:
        problems = await self._source_checks.problems(self._sources)
        problems.update(self._tasks.problems())
        if self._scheduler is not None:
            problems.update(self._scheduler.problems())
        return problems

    async def _status_extra(self) -> dict[str, Any]:
        current = self._scheduler.current if self._scheduler else {}
        target_ok = self._status is not None and self._status.target_ok
        extra: dict[str, Any] = {
            "target": {"url": self.config.target.url, "ok": target_ok},
            "running": {ds: job.relative_path for ds, job in current.items()},
            "notify": self.notifications.status(),
        }
        if self._store is not None and self._store.replica is not None:
            extra["replica"] = self._store.replica.name
            extra["cluster"] = await cluster_view(self._store, self.config.state.lease_timeout)
        return extra

    # -- signals -------------------------------------------------------------------------

    def _handle_exit(self, sig: signal.Signals) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("second %s: cancelling running jobs now", sig.name)
            if self._scheduler is not None:
                self._scheduler.cancel_running("forced stop")
            return
        logger.info("%s received: draining", sig.name)
        self.stop.set()
