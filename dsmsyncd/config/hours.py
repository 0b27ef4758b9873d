"""``active_hours``: the weekly windows in which jobs may start, in a named time zone.

An entry is ``"[DAYS ]HH:MM-HH:MM"``: DAYS is a day (``Mon``), a range (``Mon-Fri``,
``Fri-Mon`` wraps) or a comma list of those, every day when left out; the times are
wall-clock times in the schedule's zone, ``24:00`` ends a day. A window whose end is
not after its start crosses midnight: ``Mon-Fri 19:00-07:00`` opens on Monday at
19:00 and closes on Tuesday at 07:00, and the Friday one closes on Saturday at 07:00.

Times are turned into instants per calendar day with ``zoneinfo``, so a window keeps
its wall-clock times across DST changes (a night window is an hour shorter or longer
on those nights). A time skipped by a spring-forward change is taken as the same
time after it (02:30 → 03:30), and a repeated one at its first occurrence (PEP 495).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Schedule", "Window", "check_timezone", "check_window", "parse_window"]

_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ENTRY = re.compile(
    r"^\s*(?:(?P<days>[A-Za-z][A-Za-z,\s-]*?)\s+)?(?P<times>[\d:]+\s*-\s*[\d:]+)\s*$"
)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_FORM = "expected '[DAYS ]HH:MM-HH:MM' like 'Mon-Fri 19:00-07:00' or '00:00-24:00'"
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 is Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight; not after ``start``: on the next day

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


def parse_window(text: str) -> Window:
    """``"Mon-Fri 19:00-07:00"`` → Window; ValueError quotes the entry and says why."""
    match = _ENTRY.match(text)
    if match is None:
        raise ValueError(f"{text!r}: {_FORM}")
    days = _days(text, match.group("days"))
    first, last = (part.strip() for part in match.group("times").split("-"))
    start, end = _minutes(text, first), _minutes(text, last)
    if start == DAY_MINUTES:
        raise ValueError(f"{text!r}: a window starts at 23:59 at the latest; 24:00 ends one")
    if start == end:
        raise ValueError(
            f"{text!r}: the window is empty (start = end); write 00:00-24:00 for a whole day"
        )
    return Window(days, start, end)


def check_window(text: str) -> str:
    """A valid entry, kept as written (the config shows what the operator wrote)."""
    parse_window(text)
    return text


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: expected an IANA name like 'Europe/Paris' or 'UTC'"
        ) from None
    return name


def _days(text: str, spec: str | None) -> frozenset[int]:
    if spec is None:
        return frozenset(range(7))
    days: set[int] = set()
    for part in spec.split(","):
        ends = [_day(text, name) for name in part.split("-")]
        if len(ends) == 1:
            days.add(ends[0])
        elif len(ends) == 2:
            span = (ends[1] - ends[0]) % 7
            days.update((ends[0] + step) % 7 for step in range(span + 1))
        else:
            raise ValueError(f"{text!r}: {part.strip()!r} is not a day or a range of days")
    return frozenset(days)


def _day(text: str, name: str) -> int:
    key = name.strip().lower()
    for index, full in enumerate(_FULL_DAYS):
        if key in (full, full[:3]):
            return index
    raise ValueError(f"{text!r}: unknown day {name.strip()!r} (expected Mon, Tue … Sun)")


def _minutes(text: str, value: str) -> int:
    match = _TIME.match(value)
    if match is None:
        raise ValueError(f"{text!r}: {value!r} is not a time; {_FORM}")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"{text!r}: {value!r} is not a time of day (00:00 to 24:00)")
    return hours * 60 + minutes


@dataclass(frozen=True)
class Schedule:
    """Windows in a zone; ``is_open`` and ``next_open`` take and give aware instants."""

    windows: tuple[Window, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, entries: Sequence[str], timezone: str) -> Schedule:
        return cls(tuple(parse_window(entry) for entry in entries), ZoneInfo(timezone))

    def is_open(self, at: datetime) -> bool:
        return any(start <= at < end for start, end in self._intervals(at))

    def next_open(self, at: datetime) -> datetime | None:
        """When the next window opens, in UTC; None while one is open."""
        if self.is_open(at):
            return None
        starts = [start for start, _ in self._intervals(at) if start > at]
        return min(starts) if starts else None

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def _intervals(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Every window from the day before ``at`` to a week after it, as UTC instants."""
        today = at.astimezone(self.zone).date()
        for offset in range(-1, 9):
            day = today + timedelta(days=offset)
            for window in self.windows:
                if day.weekday() in window.days:
                    end_day = day + timedelta(days=1) if window.crosses_midnight else day
                    yield self._instant(day, window.start), self._instant(end_day, window.end)

    def _instant(self, day: date, minutes: int) -> datetime:
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        return (midnight + timedelta(minutes=minutes)).astimezone(UTC)
