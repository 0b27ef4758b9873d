"""Which event a finished run raises for a target (``notify/events.py``), from the job,
its history and its dataset's previous job: one message per run and target; and how
its chat line is escaped (``notify/message.py``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from dsmsyncd.config.notify import NotifyConfig
from dsmsyncd.notify.events import Notice, choose, notices_of
from dsmsyncd.notify.message import Scrubber, mail_body, message_of
from dsmsyncd.state import Job, JobEvent, JobState
from tests.daemon.support.jobs import finished_job

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def job(state: JobState | StrEnum, **fields: Any) -> Job:
    base = finished_job("drop", "data.csv", "id-1", 10, T0)
    return dataclasses.replace(base, state=state, **fields)  # type: ignore[arg-type]


def failures(*minutes: float) -> list[JobEvent]:
    """A history with one FAILED_RETRYABLE entry at each of ``minutes`` after T0."""
    events = []
    for n, minute in enumerate(minutes):
        at = T0 + timedelta(minutes=minute)
        events.append(JobEvent(2 * n, 1, at, JobState.OPENING, JobState.DISCOVERED, {}))
        details = {"kind": "transport"}
        events.append(
            JobEvent(2 * n + 1, 1, at, JobState.FAILED_RETRYABLE, JobState.OPENING, details)
        )
    return events


def target(*events: str, retrying_after: str = "30m") -> NotifyConfig:
    return NotifyConfig.model_validate(
        {"webhook_url": "https://h.example", "events": events, "retrying_after": retrying_after}
    )


def chosen(notices: list[Notice], config: NotifyConfig) -> str | None:
    notice = choose(notices, config)
    return None if notice is None else notice.event


def test_first_failure_is_failed_and_later_ones_are_silent_until_retrying_after() -> None:
    wants = target("failed", "retrying", retrying_after="30m")

    def attempt(*minutes: float) -> list[Notice]:
        failing = job(JobState.FAILED_RETRYABLE, attempts=len(minutes), error="target down")
        return notices_of(failing, failures(*minutes), [])

    assert chosen(attempt(0), wants) == "failed"
    assert chosen(attempt(0, 10), wants) is None
    crossed = attempt(0, 10, 40)
    assert chosen(crossed, wants) == "retrying"
    assert (crossed[0].failing_for_s, crossed[0].attempts) == (2400.0, 3)
    assert (crossed[0].reason, crossed[0].message) == ("transport", "target down")
    assert chosen(attempt(0, 10, 40, 80), wants) is None


def test_a_history_read_after_later_failures_is_cut_at_the_runs_attempts() -> None:
    first_run = job(JobState.FAILED_RETRYABLE, attempts=1)
    notices = notices_of(first_run, failures(0, 10, 40), [])
    assert [n.event for n in notices] == ["retrying", "failed"]
    assert notices[0].failing_for_s == 0.0
    assert chosen(notices, target("failed", "retrying")) == "failed"


def test_published_after_failed_attempts_is_recovered_not_published_too() -> None:
    both = target("published", "recovered")
    after_failures = job(JobState.PUBLISHED, attempts=3, error="old error")
    (recovered, published) = notices_of(after_failures, [], [])
    assert (recovered.event, recovered.reason, recovered.message) == (
        "recovered",
        "failed_attempts",
        None,
    )
    assert chosen([recovered, published], both) == "recovered"
    assert chosen([recovered, published], target("published")) == "published"


def test_published_after_the_datasets_last_verdict_was_a_quarantine_is_recovered() -> None:
    wants = target("recovered")

    def ended(state: JobState, job_id: int, minute: int) -> Job:
        return job(state, id=job_id, finished_at=T0 + timedelta(minutes=minute))

    published = ended(JobState.PUBLISHED, 3, 30)
    quarantined = ended(JobState.QUARANTINED, 2, 20)
    skipped = ended(JobState.SKIPPED, 4, 25)
    assert chosen(notices_of(published, [], [skipped, quarantined]), wants) == "recovered"
    assert notices_of(published, [], [quarantined])[0].reason == "after_quarantine"
    earlier_ok = ended(JobState.PUBLISHED, 1, 25)
    assert chosen(notices_of(published, [], [earlier_ok, quarantined]), wants) is None
    # A later file quarantined before the history was read does not count.
    later = ended(JobState.QUARANTINED, 5, 40)
    assert chosen(notices_of(published, [], [later, earlier_ok, quarantined]), wants) is None


def test_events_follow_the_state_value_so_a_staged_state_needs_no_change() -> None:
    class LaterState(StrEnum):  # a state another branch adds: only its value matters
        STAGED = "staged"

    (notice,) = notices_of(job(LaterState.STAGED), [], [])
    assert (notice.event, notice.state) == ("staged", "staged")
    assert chosen([notice], target("staged")) == "staged"
    assert notices_of(job(JobState.SKIPPED), [], []) == []
    assert notices_of(job(JobState.HELD), [], []) == []


def test_quarantine_carries_the_reason_from_the_history() -> None:
    history = [
        JobEvent(1, 1, T0, JobState.QUARANTINED, JobState.PROCESSING, {}),
        JobEvent(2, 1, T0, JobState.QUARANTINED, JobState.QUARANTINED, {"reason": "bad_csv"}),
    ]
    (notice,) = notices_of(job(JobState.QUARANTINED, error="bad_csv: no header"), history, [])
    assert (notice.event, notice.reason, notice.message) == (
        "quarantined",
        "bad_csv",
        "bad_csv: no header",
    )


def test_chat_text_cannot_ping_a_channel_but_the_mail_keeps_the_name() -> None:
    odd = job(JobState.PUBLISHED, relative_path="<!channel> & co.csv")
    (notice,) = notices_of(odd, [], [])
    message = message_of(notice, Scrubber([]))
    assert message.fields["text"] == (
        "dsmsyncd: &lt;!channel&gt; &amp; co.csv (dataset abcd-1234) was published"
    )
    assert message.fields["file"] == "<!channel> & co.csv"
    assert mail_body(message).startswith("dsmsyncd: <!channel> & co.csv (dataset abcd-1234)")
