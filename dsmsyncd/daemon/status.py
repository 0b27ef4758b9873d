"""What the daemon answers on ``/readyz`` and ``/status``: one place for what "ready" means.

``SimpleStatus`` is the admin app's ``StatusProvider`` over the state store. Its checks
are the daemon's readiness: the state store answers, the target answers (probed at most
every ``target_ttl``, so that probes every few seconds do not turn into calls on the
publishing API), the daemon is not draining, and whatever the daemon adds through
``ready_checks`` (sources, its own tasks, crashed lanes). ``SourceChecks`` paces the
source checks, which send requests (a bucket listing) too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from dsmsyncd import __version__
from dsmsyncd.config.redact import redact_text
from dsmsyncd.observe.admin import OK
from dsmsyncd.observe.metrics import Metrics
from dsmsyncd.pipeline.staging import apply_hint, revision_url
from dsmsyncd.sources.base import Source
from dsmsyncd.state import Job, JobState, StateStore, UnknownJob, utc_now

# Checks that send requests (a target probe, a bucket listing) run at most this often.
CHECK_INTERVAL_S = 15.0
RUNNING_STATES = frozenset(
    {JobState.OPENING, JobState.UPLOADING, JobState.PROCESSING, JobState.APPLYING}
)
# Unfinished, but not waiting for the daemon: held for a mapping, staged for a person.
PARKED = frozenset({JobState.HELD, JobState.STAGED})


class SimpleStatus:
    """StatusProvider built from the state store and a few callables from the daemon.

    ``probe_target`` (say, a cheap authenticated GET on the DSMAPI) raises when the
    target cannot be used; its outcome is cached for ``target_ttl`` seconds so that
    probes every few seconds do not turn into calls on the publishing API. Each check
    gives up after ``check_timeout`` seconds, because a probe that hangs is a failure.

    Two hooks let the daemon add what only it knows: ``ready_checks`` returns more
    checks (name → message; any message but ``OK`` fails readiness, so it may return
    only its problems), and ``extra`` returns keys laid over the snapshot (the target's
    URL, the jobs its scheduler holds).
    """

    def __init__(
        self,
        store: StateStore,
        *,
        draining: Callable[[], bool] = lambda: False,
        probe_target: Callable[[], Awaitable[object]] | None = None,
        datasets: Callable[[], Iterable[str]] = tuple,
        sources: Callable[[], Sequence[Mapping[str, Any]]] = list,
        ready_checks: Callable[[], Awaitable[Mapping[str, str]]] | None = None,
        extra: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
        target_url: Callable[[], str] | None = None,
        waiting: Callable[[Job], str | None] | None = None,
        version: str = __version__,
        started_at: datetime | None = None,
        recent_per_dataset: int = 10,
        target_ttl: float = 30.0,
        check_timeout: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._draining = draining
        self._probe_target = probe_target
        self._datasets = datasets
        self._sources = sources
        self._ready_checks = ready_checks
        self._extra = extra
        self._target_url = target_url
        self._waiting = waiting  # why a lane's head has not started (active hours)
        self._version = version
        self._started_at = started_at or utc_now()
        self._recent = recent_per_dataset
        self._target_ttl = target_ttl
        self._timeout = check_timeout
        self._monotonic = monotonic
        self._target: tuple[float, str] | None = None  # (checked at, message)
        self._target_lock = asyncio.Lock()

    async def ready(self) -> tuple[bool, dict[str, str]]:
        checks = {
            "state_store": await self._check(self._store.ping()),
            "target": await self.check_target(),
            "draining": (
                "draining: finishing jobs in flight, taking no new files"
                if self._draining()
                else OK
            ),
        }
        if self._ready_checks is not None:
            checks.update(await self._more_checks(self._ready_checks))
        return all(message == OK for message in checks.values()), checks

    async def _more_checks(
        self, ready_checks: Callable[[], Awaitable[Mapping[str, str]]]
    ) -> dict[str, str]:
        try:
            async with asyncio.timeout(self._timeout):
                return dict(await ready_checks())
        except Exception as exc:
            return {"daemon": self._describe(exc)}

    async def _check(self, probe: Awaitable[object]) -> str:
        try:
            async with asyncio.timeout(self._timeout):
                await probe
        except Exception as exc:
            return self._describe(exc)
        return OK

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self._timeout:g} s"
        return redact_text(f"{type(exc).__name__}: {exc}")

    async def check_target(self) -> str:
        """``OK`` or what is wrong with the target, probed at most every ``target_ttl``."""
        if self._probe_target is None:
            return OK
        async with self._target_lock:  # one probe at a time; the others get its result
            cached = self._target
            if cached is None or self._monotonic() - cached[0] >= self._target_ttl:
                cached = (self._monotonic(), await self._check(self._probe_target()))
                self._target = cached
            return cached[1]

    @property
    def target_ok(self) -> bool:
        """Whether the last probe of the target passed (False before the first one)."""
        return self._target is not None and self._target[1] == OK

    def forget_target(self) -> None:
        """Probe the target afresh next time (a reload changed it)."""
        self._target = None

    async def store_answers(self) -> bool:
        """Whether the state store answers within ``check_timeout``: what every job needs."""
        return await self._check(self._store.ping()) == OK

    async def snapshot(self) -> dict[str, Any]:
        unfinished = await self._store.unfinished_jobs()
        recent_any = await self._store.recent_jobs(self._recent)
        names = dict.fromkeys(
            [
                *self._datasets(),
                *(job.dataset for job in unfinished),
                *(job.dataset for job in recent_any),
            ]
        )
        datasets = []
        for name in names:
            lane = [job for job in unfinished if job.dataset == name]
            current = next((job for job in lane if job.state in RUNNING_STATES), None)
            entry: dict[str, Any] = self._waiting_entry(lane) if current is None else {}
            datasets.append(
                {
                    "dataset": name,
                    "current": _job_view(current) if current else None,
                    "queued": sum(job.state not in RUNNING_STATES | PARKED for job in lane),
                    "held": sum(job.state is JobState.HELD for job in lane),
                    "staged": [
                        self._staged_view(job) for job in lane if job.state is JobState.STAGED
                    ],
                    "recent": [
                        _job_view(job) for job in await self._store.recent_jobs(self._recent, name)
                    ],
                    **entry,
                }
            )
        counts = await self._store.counts_by_state()
        snapshot: dict[str, Any] = {
            "version": self._version,
            "started_at": self._started_at.isoformat(),
            "draining": self._draining(),
            "counts": {state.value: n for state, n in counts.items()},
            "datasets": datasets,
            "sources": [dict(source) for source in self._sources()],
        }
        if self._extra is not None:
            snapshot.update(await self._extra())
        return snapshot

    def _staged_view(self, job: Job) -> dict[str, Any]:
        """A staged job, with where to read its revision and how to publish it."""
        target = self._target_url() if self._target_url is not None else ""
        return {
            **_job_view(job),
            "revision_url": revision_url(target, job.dataset, job.revision_seq),
            "apply": apply_hint(job.dataset, job.revision_seq),
        }

    def _waiting_entry(self, lane: Sequence[Job]) -> dict[str, Any]:
        """``{"waiting": why}`` when the lane's head waits (active hours), else nothing."""
        head = next((job for job in lane if job.state is not JobState.HELD), None)
        note = self._waiting(head) if self._waiting is not None and head else None
        return {"waiting": note, "waiting_job": head.id} if note and head else {}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _job_view(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "file": job.relative_path,
        "source": job.source,
        "dataset": job.dataset,
        "revision": job.revision_seq,
        "attempts": job.attempts,
        "size": job.size,
        "error": job.error,
        "error_count": job.error_count,
        "discovered_at": _iso(job.discovered_at),
        "updated_at": _iso(job.updated_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "next_attempt_at": _iso(job.next_attempt_at),
    }


class SourceChecks:
    """The sources' problems for ``/readyz``, looked for at most every ``interval_s``
    (a bucket's check lists it), each source's ``dsmsyncd_source_up`` set meanwhile."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        interval_s: float = CHECK_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._checked = float("-inf")
        self._problems: dict[str, str] = {}

    async def problems(self, sources: Mapping[str, Source]) -> dict[str, str]:
        now = self._monotonic()
        if now - self._checked >= self._interval_s:
            self._checked = now
            found: dict[str, str] = {}
            for name, source in sources.items():
                problems = await source.check()
                self._metrics.source_up.labels(name).set(0 if problems else 1)
                for problem in problems:
                    found[f"source {name}"] = problem
            self._problems = found
        return dict(self._problems)


async def cluster_view(store: StateStore, lease_timeout_s: float) -> dict[str, Any]:
    """Every replica seen lately and every lane lease, with the file each lane runs:
    ``/status`` and ``dsmsyncd status`` show the whole cluster from any replica."""
    now = utc_now()
    view = (await store.cluster()).view(now, timedelta(seconds=lease_timeout_s))
    for lane in view["lanes"]:
        if lane["job_id"] is not None:
            with contextlib.suppress(UnknownJob):
                job = await store.get_job(lane["job_id"])
                lane["file"] = f"{job.source}:{job.relative_path}"
                lane["state"] = job.state.value
    return view
