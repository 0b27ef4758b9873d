"""Dataset lanes: one job at a time per dataset, in arrival order, many datasets at once.

The queue lives in the state store, not in memory: a lane asks the store for its
dataset's oldest unfinished job, runs it, and asks again. So files waiting for a busy
dataset cost one row each and no memory here (invariant 3), and a restart finds the
same queue (invariant 1). ``max_concurrent_jobs`` bounds the lanes running at once.

Replicas sharing a state database share the lanes: a lane runs only while this
replica holds its lease (``state/lanes.py``), renewed by ``keep_leases`` well before
it ends. A lane whose lease ended without being given up (a replica died in it) is an
orphan: it is claimed like any lane with work, and its leftovers (a finished job whose
file was never moved) are finished before its next job, as a restart would. A lane
whose lease is lost (this replica was cut off longer than the lease) stops its job at
once; the store refuses its writes by then anyway (``LaneLost``).

A ``gate`` (``active_hours.py``) may make a lane's head wait: its lane is not started,
or stops before running it, until the gate lets it go at a later look.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from dsmsyncd.config.schema import StateConfig
from dsmsyncd.config.state_url import is_postgres_url
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.state import (
    TERMINAL_STATES,
    Job,
    JobState,
    LaneClaim,
    LaneLost,
    StateStore,
    utc_now,
)

logger = logging.getLogger("dsmsyncd.daemon.scheduler")

RunJob = Callable[[Job], Awaitable[Job]]
Sweep = Callable[[str], Awaitable[object]]
# When a job may start if it must wait (active hours), else None.
Gate = Callable[[Job], datetime | None]

# How often lanes are looked for without a wake-up: retries come due on their own.
IDLE_RECHECK_S = 1.0
IDLE_RECHECK_POSTGRES_S = 5.0
LANE_CRASH_MAX_PAUSE_S = 300.0
# Leases are renewed three times per lease timeout: two renewals may fail in a row
# (a database hiccup) before a lease can end under a live replica.
RENEWALS_PER_LEASE = 3


def idle_recheck_s(state: StateConfig) -> float:
    """How often lanes are looked for without a wake-up. Replicas on PostgreSQL are
    woken by notifications, so they look less often, but often enough to notice a
    dead replica's lease ending within a sixth of the lease timeout."""
    if is_postgres_url(state.url):
        return min(IDLE_RECHECK_POSTGRES_S, state.lease_timeout / 6)
    return IDLE_RECHECK_S


class Scheduler:
    def __init__(
        self,
        store: StateStore,
        run_job: RunJob,
        metrics: Metrics,
        *,
        max_concurrent_jobs: int,
        sweep: Sweep | None = None,
        idle_recheck_s: float = IDLE_RECHECK_S,
        clock: Callable[[], datetime] = utc_now,
        gate: Gate | None = None,
    ) -> None:
        self._store = store
        self.run_job = run_job
        self._sweep = sweep
        self._idle_recheck_s = idle_recheck_s
        self._replica = store.replica.name if store.replica is not None else "-"
        self._renewed_at = time.monotonic()
        # Datasets whose leftovers are finished on their next claim (startup found some).
        self._sweep_first: set[str] = set()
        self._metrics = metrics
        self.max_concurrent_jobs = max_concurrent_jobs
        self._clock = clock
        self.gate = gate
        self._lanes: dict[str, asyncio.Task[bool]] = {}
        # The claim each running lane holds: a lane still claiming holds none yet, so a
        # renewal that does not name it has lost nothing.
        self._claims: dict[str, LaneClaim] = {}
        self._wake = asyncio.Event()
        self._accepting = True
        self.current: dict[str, Job] = {}
        # A lane that crashed (a bug, not a job outcome) waits before it runs again,
        # so one bad job cannot spin the loop; the wait doubles per crash, capped.
        self._crashes: dict[str, int] = {}
        self._cooldown_until: dict[str, float] = {}
        self._last_crash: dict[str, str] = {}

    def sweep_first(self, datasets: set[str]) -> None:
        """Finish these datasets' leftovers under their lanes' leases before other work."""
        self._sweep_first |= datasets
        self.wake()

    def wake(self) -> None:
        """A job was added or became runnable: look for work now rather than at the next tick."""
        self._wake.set()

    def problems(self) -> dict[str, str]:
        """Lanes whose last run crashed (a bug, not a job outcome), for ``/readyz``."""
        return {
            f"lane {dataset}": f"crashed {self._crashes.get(dataset, 0)} time(s), last with "
            f"{message}; it pauses before trying again"
            for dataset, message in sorted(self._last_crash.items())
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Start lanes for datasets with work until ``stop`` is set."""
        while not stop.is_set():
            self._wake.clear()
            await self._start_lanes()
            await self._update_queue_depth()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(
                    waiters, timeout=self._idle_recheck_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
        self._accepting = False

    async def _start_lanes(self) -> None:
        if not self._accepting:
            return
        now = self._clock()
        orphans = await self._store.orphaned_lanes(now)
        with_work = await self._store.datasets_with_work(now)
        for dataset in dict.fromkeys([*orphans, *sorted(self._sweep_first), *with_work]):
            if len(self._lanes) >= self.max_concurrent_jobs:
                break
            if dataset in self._lanes or self._cooldown_until.get(dataset, 0) > time.monotonic():
                continue
            sweeps = dataset in orphans or dataset in self._sweep_first
            if not sweeps and await self._head_waits(dataset, now):
                continue
            task = asyncio.create_task(self._lane(dataset), name=f"lane-{dataset}")
            self._lanes[dataset] = task
            task.add_done_callback(functools.partial(self._lane_done, dataset))

    async def _head_waits(self, dataset: str, now: datetime) -> bool:
        """The gate holds the dataset's head back (no lane is started for it)."""
        if self.gate is None:
            return False
        head = await self._store.next_runnable(dataset, now)
        return head is not None and self.gate(head) is not None

    def _lane_done(self, dataset: str, _task: asyncio.Task[bool]) -> None:
        task = self._lanes.pop(dataset, None)
        self.current.pop(dataset, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            crashes = self._crashes.get(dataset, 0) + 1
            self._crashes[dataset] = crashes
            pause = min(LANE_CRASH_MAX_PAUSE_S, 2.0**crashes)
            self._cooldown_until[dataset] = time.monotonic() + pause
            self._last_crash[dataset] = repr(task.exception())[:300]
            logger.error(
                "lane %s crashed (%d time(s)); it pauses %.0fs",
                dataset,
                crashes,
                pause,
                exc_info=task.exception(),
            )
        elif task is not None and not task.cancelled():
            self._crashes.pop(dataset, None)
            self._last_crash.pop(dataset, None)
            if not task.result():
                # Refused: another replica holds the lane. Looking again at once would
                # spin on claims; its release (a notification) or the recheck wakes us.
                return
        self._wake.set()  # a slot is free: another dataset may go

    async def _lane(self, dataset: str) -> bool:
        """Run the dataset's lane while this replica holds it; False if another does."""
        claim = await self._store.claim_lane(dataset, self._clock())
        if claim is None:
            return False  # another replica holds it
        self._claims[dataset] = claim
        self._metrics.lanes_held.labels(self._replica).inc()
        finished = False
        try:
            if claim.taken_from is not None:
                logger.info("lane %s taken over from replica %s", dataset, claim.taken_from)
                self._metrics.lane_takeovers.labels(self._replica).inc()
            if (claim.taken_from is not None or dataset in self._sweep_first) and self._sweep:
                await self._sweep(dataset)
            self._sweep_first.discard(dataset)
            await self._run_lane(dataset)
            finished = True
        except LaneLost as lost:
            logger.warning("lane %s: %s", dataset, lost)
            self._metrics.lane_losses.labels(self._replica).inc()
            finished = True  # nothing of ours to give up: the lease is another's
        finally:
            self._claims.pop(dataset, None)
            self._metrics.lanes_held.labels(self._replica).dec()
            await self._release(dataset, finished)
        return True

    async def _run_lane(self, dataset: str) -> None:
        while self._accepting:
            now = self._clock()
            job = await self._store.claim_next(dataset, now)
            if job is None or (self.gate is not None and self.gate(job) is not None):
                return  # nothing due, or the head waits for its window: looked at later
            self.current[dataset] = job
            self._metrics.jobs_in_flight.inc()
            try:
                finished = await self.run_job(job)
            finally:
                self._metrics.jobs_in_flight.dec()
            if finished.state is JobState.FAILED_RETRYABLE:
                return  # the lane waits for next_attempt_at; the store keeps arrival order
            if await self._orphan_waits():
                logger.info("lane %s gives way to a dead replica's lane after this job", dataset)
                return

    async def _orphan_waits(self) -> bool:
        """Whether a lane whose lease ended (its replica died) waits for a slot of ours.

        A lane runs its dataset's whole queue; with every slot busy, an orphan would wait
        for some queue to empty. A full replica ends a lane after its job instead, so the
        dead replica's jobs resume within the lease timeout plus one job; the lane's own
        queue is claimed again like any lane with work.
        """
        if len(self._lanes) < self.max_concurrent_jobs:
            return False  # a free slot: the scheduler starts the orphan itself
        now = time.monotonic()
        return any(
            dataset not in self._lanes and self._cooldown_until.get(dataset, 0) <= now
            for dataset in await self._store.orphaned_lanes(self._clock())
        )

    async def _release(self, dataset: str, finished: bool) -> None:
        """Give the lane up; a failure to say so only lets its lease end on its own."""
        try:
            await self._store.release_lane(dataset, finished=finished)
        except Exception as exc:  # the lease ends by itself: log and go on
            logger.warning(
                "lane %s: could not give its lease up (%s); it ends by itself", dataset, exc
            )

    async def keep_leases(self, stop: asyncio.Event) -> None:
        """Renew this replica's leases until ``stop``; stop lanes whose lease was lost.

        A renewal that fails raises (the supervisor retries it with back-off and shows
        it in ``/readyz``); once the last good renewal is older than half the lease,
        every lane is stopped first: the store may have handed them to another replica.
        """
        replica = self._store.replica
        if replica is None:
            return
        every = replica.lease_timeout_s / RENEWALS_PER_LEASE
        while not stop.is_set():
            # Only claims made before the renewal began must be in what it kept: a lane
            # still claiming (or claimed meanwhile) is not lost, and cancelling it while
            # its claim commits would leave a lease that no lane of ours runs.
            claimed = dict(self._claims)
            try:
                kept = await self._store.renew_lanes(self._clock())
            except Exception:
                if time.monotonic() - self._renewed_at > replica.lease_timeout_s / 2:
                    self.cancel_running("its lease could not be renewed")
                raise
            self._renewed_at = time.monotonic()
            for dataset, claim in claimed.items():
                task = self._lanes.get(dataset)
                lost = dataset not in kept and self._claims.get(dataset) is claim
                if lost and task is not None and not task.done():
                    logger.warning("lane %s: its lease was lost; stopping its job", dataset)
                    self._metrics.lane_losses.labels(self._replica).inc()
                    task.cancel(msg="lease lost")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await stop.wait()

    async def _update_queue_depth(self) -> None:
        counts = await self._store.counts_by_state()
        waiting = sum(
            n
            for state, n in counts.items()
            if state not in TERMINAL_STATES | {JobState.HELD, JobState.STAGED}
        )
        self._metrics.queue_depth.set(max(0, waiting - len(self._lanes)))

    def cancel_running(self, why: str) -> None:
        """Cancel every running job now (a second stop signal); each resumes at the next
        start, from the last step it recorded (writes are shielded)."""
        for task in self._lanes.values():
            task.cancel(msg=why)

    async def drain(self, timeout_s: float) -> bool:
        """Stop starting jobs and let running ones finish; cancel them past ``timeout_s``.

        Returns True when every lane finished on its own. A cancelled job has recorded
        its last step (writes are shielded), so the next start resumes it.
        """
        self._accepting = False
        lanes = list(self._lanes.values())
        if not lanes:
            return True
        _done, pending = await asyncio.wait(lanes, timeout=timeout_s)
        for task in pending:
            task.cancel(msg="drain timeout")
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return not pending
