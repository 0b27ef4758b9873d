"""Which jobs wait for their ``active_hours`` window, and until when.

A file found outside its window is recorded as usual (the queue is the state store's)
but its job does not start: the scheduler asks ``opens_at`` before it starts a lane
and before it runs a lane's head, and leaves the lane alone until the window opens.
It notices the opening at its next look (every ``IDLE_RECHECK_S``), so nothing spins
and nothing is written to the job meanwhile.

Only jobs that have not started wait (``DISCOVERED``). A job that started — running,
resumed after a restart, or retrying — finishes even when its window closes: stopping
it would leave an open revision on the site for hours, and its file is already on
its way. The window is read from the configuration in force at each look, so a
SIGHUP that changes ``active_hours`` applies to the queued files at once: a mapping's
own ``active_hours`` (with its ``timezone``, else ``[limits] timezone``) wins over
``[limits] active_hours``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from dsmsyncd.config.hours import Schedule
from dsmsyncd.config.schema import Config, MappingConfig
from dsmsyncd.pipeline.routing import route
from dsmsyncd.state import Job, JobState, utc_now

logger = logging.getLogger("dsmsyncd.daemon.active_hours")

__all__ = ["ActiveHours"]


class ActiveHours:
    def __init__(
        self, config: Callable[[], Config], clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._config = config
        # Its own clock, not the scheduler's (leases keep real time): tests move it.
        self.clock = clock
        self._told: dict[int, datetime] = {}  # job id → opening already logged

    def opens_at(self, job: Job) -> datetime | None:
        """When ``job`` may start, if it must wait; None if it may start now."""
        schedule = self.schedule_for(job)
        if schedule is None or job.state is not JobState.DISCOVERED:
            return None
        opening = schedule.next_open(self.clock())
        if opening is None:
            self._told.pop(job.id, None)
        elif self._told.get(job.id) != opening:
            self._told[job.id] = opening
            logger.info(
                "%s waits: %s",
                job.relative_path,
                self._describe(schedule, opening),
                extra={"job": job.id},
            )
        return opening

    def waiting_note(self, job: Job) -> str | None:
        """``"waiting for active hours until 19:00 Europe/Paris"``, or None."""
        schedule = self.schedule_for(job)
        if schedule is None or job.state is not JobState.DISCOVERED:
            return None
        now = self.clock()
        opening = schedule.next_open(now)
        return None if opening is None else self._describe(schedule, opening, now)

    def schedule_for(self, job: Job) -> Schedule | None:
        config = self._config()
        mapping = _mapping_of(job, config.mapping)
        if mapping is not None and mapping.active_hours is not None:
            zone = mapping.timezone or config.limits.timezone
            return _schedule(tuple(mapping.active_hours), zone)
        if config.limits.active_hours is not None:
            return _schedule(tuple(config.limits.active_hours), config.limits.timezone)
        return None

    @staticmethod
    def _describe(schedule: Schedule, opening: datetime, now: datetime | None = None) -> str:
        local = schedule.local(opening)
        same_day = now is not None and schedule.local(now).date() == local.date()
        when = f"{local:%H:%M}" if same_day else f"{local:%a %Y-%m-%d %H:%M}"
        return f"waiting for active hours until {when} {schedule.zone.key}"


@functools.lru_cache(maxsize=64)
def _schedule(entries: tuple[str, ...], timezone: str) -> Schedule:
    return Schedule.parse(entries, timezone)


def _mapping_of(job: Job, mappings: Sequence[MappingConfig]) -> MappingConfig | None:
    """The mapping that routes the job's file to its dataset today, else any mapping from
    the job's source to its dataset (the one the job still runs with)."""
    routed = route(job.source, job.relative_path, mappings)
    if routed is not None and routed[1].dataset == job.dataset:
        return routed[1]
    same = (m for m in mappings if m.source == job.source and m.dataset == job.dataset)
    return next(same, None)
