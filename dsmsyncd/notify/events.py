"""What a job's run means to the people who asked to hear of it: ``Notice`` and the rules.

A run that ends raises a short list of candidate events, most specific first, read from
the job, its history and its dataset's previous job, all in the state store, so a
restart changes nothing:

- ``published``, or ``recovered`` first when the job had failed attempts before
  (reason ``failed_attempts``), or when the dataset's previous published-or-quarantined
  job was quarantined (``after_quarantine``);
- ``quarantined``; ``staged`` (any job state named so: the state is matched by its
  value, so a state added later needs no change here);
- a failed attempt: ``failed`` at a job's first failure; ``retrying`` at the one
  attempt whose failure crosses the target's ``retrying_after`` since the first.

Each target takes the first candidate it subscribes to (``choose``): one message per
run and target, so a target that wants ``published`` and ``recovered`` hears
``recovered`` once, not both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dsmsyncd.config.notify import NotifyConfig, NotifyEvent
from dsmsyncd.state import Job, JobEvent, JobState

# Job state values that raise an event of the same name when a run ends in them.
_STATE_EVENTS: dict[str, NotifyEvent] = {
    "published": "published",
    "quarantined": "quarantined",
    "staged": "staged",
}
# Events whose message is the job's error (a published job's may be an old one).
_WITH_ERROR = frozenset({"quarantined", "failed", "retrying"})
# A previous job of the dataset in one of these states says whether the feed worked.
_FEED_VERDICTS = frozenset({JobState.PUBLISHED, JobState.QUARANTINED})


@dataclass(frozen=True)
class Notice:
    """One event of one job run, with what a message about it may say (no secret)."""

    event: NotifyEvent
    job_id: int
    dataset: str
    file: str
    source: str
    state: str
    reason: str | None
    message: str | None
    attempts: int
    at: datetime
    # For a failed attempt: seconds since the job's first failure, at this attempt and
    # at the one before (None for the first), so ``retrying`` fires at one attempt only.
    failing_for_s: float | None = None
    failing_before_s: float | None = None


def notices_of(job: Job, history: list[JobEvent], previous: list[Job]) -> list[Notice]:
    """The candidate events of ``job``'s run, most specific first; ``history`` is its
    events, ``previous`` its dataset's other jobs, most recently updated first."""
    state = str(job.state.value)
    if state == JobState.FAILED_RETRYABLE.value:
        return _failure_notices(job, history)
    event = _STATE_EVENTS.get(state)
    if event is None:
        return []
    if event != "published":
        return [_notice(job, event, _last_detail(history, "reason"))]
    notices = [_notice(job, event, None)]
    recovery = _recovery(job, previous)
    if recovery is not None:
        notices.insert(0, _notice(job, "recovered", recovery))
    return notices


def choose(notices: list[Notice], config: NotifyConfig) -> Notice | None:
    """The first notice ``config`` asks for (``retrying`` only at its threshold)."""
    for notice in notices:
        if notice.event not in config.events:
            continue
        if notice.event == "retrying" and not _crosses(notice, config.retrying_after):
            continue
        return notice
    return None


def _crosses(notice: Notice, after_s: float) -> bool:
    now, before = notice.failing_for_s, notice.failing_before_s
    return now is not None and now >= after_s and (before is None or before < after_s)


def _failure_notices(job: Job, history: list[JobEvent]) -> list[Notice]:
    # One event with a failure "kind" per failed attempt (``retry_later``); the history
    # may be read after later attempts failed too, so only this run's first ones count.
    failing = JobState.FAILED_RETRYABLE
    attempts = [e for e in history if e.state is failing and "kind" in e.details]
    attempts = attempts[: job.attempts]
    if not attempts:
        return []
    first = attempts[0].at
    failing_for = (attempts[-1].at - first).total_seconds()
    before = (attempts[-2].at - first).total_seconds() if len(attempts) > 1 else None
    kind = str(attempts[-1].details["kind"])
    retrying = _notice(job, "retrying", kind, failing_for_s=failing_for, failing_before_s=before)
    notices = [retrying]
    if job.attempts == 1:
        notices.append(_notice(job, "failed", kind, failing_for_s=failing_for))
    return notices


def _recovery(job: Job, previous: list[Job]) -> str | None:
    """Why a published job is a recovery (``failed_attempts``, ``after_quarantine``), or None."""
    if job.attempts > 0:
        return "failed_attempts"
    ended = job.finished_at or job.updated_at
    # Only jobs that ended before this one: the history may be read after later ones.
    verdicts = [
        j
        for j in previous
        if j.id != job.id
        and j.state in _FEED_VERDICTS
        and j.finished_at is not None
        and j.finished_at <= ended
    ]
    verdicts.sort(key=lambda j: j.finished_at or ended, reverse=True)
    if verdicts and verdicts[0].state is JobState.QUARANTINED:
        return "after_quarantine"
    return None


def _last_detail(history: list[JobEvent], key: str) -> str | None:
    for event in reversed(history):
        value = event.details.get(key)
        if isinstance(value, str):
            return value
    return None


def _notice(
    job: Job,
    event: NotifyEvent,
    reason: str | None,
    *,
    failing_for_s: float | None = None,
    failing_before_s: float | None = None,
) -> Notice:
    return Notice(
        event=event,
        job_id=job.id,
        dataset=job.dataset,
        file=job.relative_path,
        source=job.source,
        state=str(job.state.value),
        reason=reason,
        message=job.error if event in _WITH_ERROR else None,
        attempts=job.attempts,
        at=job.finished_at or job.updated_at,
        failing_for_s=failing_for_s,
        failing_before_s=failing_before_s,
    )
