"""``active_hours`` windows: parsing, midnight-crossing windows, weekends, DST nights,
the mapping's windows over the global ones, and config errors naming the bad entry."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.config.hours import Schedule, Window, parse_window
from dsmsyncd.config.secrets import ConfigError
from dsmsyncd.daemon.active_hours import ActiveHours
from dsmsyncd.state import Job, JobState
from tests.daemon.support.jobs import finished_job

PARIS = ZoneInfo("Europe/Paris")
EVENINGS = ["Mon-Fri 19:00-07:00", "Sat-Sun 00:00-24:00"]


def paris(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def test_entries_are_read_with_days_ranges_lists_and_whole_days() -> None:
    assert parse_window("Mon-Fri 19:00-07:00") == Window(frozenset(range(5)), 19 * 60, 7 * 60)
    assert parse_window("Sat-Sun 00:00-24:00") == Window(frozenset({5, 6}), 0, 24 * 60)
    assert parse_window("Fri-Mon 08:00-09:30").days == frozenset({4, 5, 6, 0})
    assert parse_window("mon,Wednesday 8:00-12:00").days == frozenset({0, 2})
    assert parse_window("22:00-23:00").days == frozenset(range(7))


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("Mon-Fry 19:00-07:00", "'Mon-Fry 19:00-07:00': unknown day 'Fry'"),
        ("19:00", "'19:00': expected '[DAYS ]HH:MM-HH:MM'"),
        ("Mon 25:00-07:00", "'Mon 25:00-07:00': '25:00' is not a time of day"),
        ("Mon 07:00-07:00", "'Mon 07:00-07:00': the window is empty"),
        ("24:00-07:00", "'24:00-07:00': a window starts at 23:59 at the latest"),
        ("Mon-Tue-Wed 01:00-02:00", "'Mon-Tue-Wed 01:00-02:00': 'Mon-Tue-Wed' is not a day"),
    ],
)
def test_a_bad_entry_is_quoted_with_the_reason(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(why)):
        parse_window(entry)


def test_a_night_window_is_open_across_midnight_and_closed_by_day() -> None:
    schedule = Schedule.parse(EVENINGS, "Europe/Paris")
    monday_noon = paris(2026, 11, 30, 12, 0)
    assert not schedule.is_open(monday_noon)
    assert schedule.next_open(monday_noon) == paris(2026, 11, 30, 19, 0)
    assert schedule.is_open(paris(2026, 11, 30, 19, 0))
    assert schedule.is_open(paris(2026, 12, 1, 6, 59))  # Tuesday morning: Monday's night
    assert not schedule.is_open(paris(2026, 12, 1, 7, 0))
    # Friday's night runs into the weekend, open all day; a window belongs to the day
    # it opens, so Monday's small hours are closed (no Sunday night window).
    assert schedule.is_open(paris(2026, 12, 5, 12, 0))
    assert schedule.is_open(paris(2026, 12, 6, 23, 59))
    assert not schedule.is_open(paris(2026, 12, 7, 6, 0))
    assert schedule.next_open(paris(2026, 12, 7, 6, 0)) == paris(2026, 12, 7, 19, 0)


def test_night_windows_keep_their_wall_clock_times_over_dst_changes() -> None:
    schedule = Schedule.parse(["19:00-07:00"], "Europe/Paris")
    # 2026-03-29: clocks go forward at 02:00, the night is an hour shorter.
    spring = schedule.next_open(paris(2026, 3, 28, 12, 0))
    assert spring == paris(2026, 3, 28, 19, 0)
    assert spring is not None
    assert schedule.is_open(paris(2026, 3, 29, 6, 59))
    assert not schedule.is_open(paris(2026, 3, 29, 7, 0))
    assert paris(2026, 3, 29, 7, 0) - spring == timedelta(hours=11)
    # 2026-10-25: clocks go back at 03:00, the night is an hour longer.
    autumn = schedule.next_open(paris(2026, 10, 24, 12, 0))
    assert autumn is not None
    assert paris(2026, 10, 25, 7, 0) - autumn == timedelta(hours=13)
    assert schedule.is_open(paris(2026, 10, 25, 6, 59))
    assert not schedule.is_open(paris(2026, 10, 25, 7, 0))


def test_a_window_starting_at_a_skipped_time_opens_as_the_same_time_after_the_change() -> None:
    schedule = Schedule.parse(["Sun 02:30-04:00"], "Europe/Paris")
    opening = schedule.next_open(paris(2026, 3, 29, 0, 0))
    assert opening == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST


def job(state: JobState = JobState.DISCOVERED) -> Job:
    """A job of drop:a.csv for abcd-1234 in ``state``."""
    return dataclasses.replace(
        finished_job("drop", "a.csv", "i", 1, paris(2026, 11, 30, 11, 0)), id=7, state=state
    )


def write_config(tmp_path: Path, limits: str, mapping: str = "") -> Path:
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(
        '[target]\nurl = "http://127.0.0.1:1"\n\n'
        f"[limits]\n{limits}\n\n"
        f'[[source]]\nname = "drop"\nurl = "file://{tmp_path}/drop"\n\n'
        '[[mapping]]\nsource = "drop"\nmatch = "*.csv"\ndataset = "abcd-1234"\n'
        f'action = "update"\non_success = "keep"\nquarantine_dir = "{tmp_path}/q"\n{mapping}\n',
        encoding="utf-8",
    )
    return path


def test_a_mappings_windows_win_over_the_global_ones(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'active_hours = ["00:00-24:00"]\ntimezone = "Europe/Paris"',
        'active_hours = ["Mon-Fri 19:00-07:00"]',
    )
    config = load_config(path)
    hours = ActiveHours(lambda: config, clock=lambda: paris(2026, 11, 30, 12, 0))
    assert hours.opens_at(job()) == paris(2026, 11, 30, 19, 0)
    assert hours.waiting_note(job()) == "waiting for active hours until 19:00 Europe/Paris"
    # A job that started finishes whatever the hour: only new files wait.
    assert hours.opens_at(job(JobState.UPLOADING)) is None
    assert hours.waiting_note(job(JobState.FAILED_RETRYABLE)) is None
    hours.clock = lambda: paris(2026, 11, 30, 19, 0)
    assert hours.opens_at(job()) is None


def test_without_windows_nothing_waits(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "max_concurrent_jobs = 1"))
    assert ActiveHours(lambda: config).opens_at(job()) is None


def test_bad_windows_are_config_errors_naming_the_entry(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'active_hours = ["Mon-Fri 19:00-07:00", "Sat-Sun 00:00-25:00"]',
        'timezone = "Europe/Pariss"',
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    text = str(raised.value)
    assert "limits.active_hours[1]: 'Sat-Sun 00:00-25:00': '25:00' is not a time of day" in text
    assert "mapping[0].timezone: unknown time zone 'Europe/Pariss'" in text
