"""Timestamp parsing, extraction, truncation and arithmetic.

Formats, time zones and units must be literals: DuckDB raises at runtime on a bad
strptime format or zone name, so each is probed at compile time instead.
"""

from __future__ import annotations

import re

from dsmsyncd.server.soql_types import SoqlType
from dsmsyncd.server.transforms import numbers
from dsmsyncd.server.transforms.registry import define
from dsmsyncd.server.transforms.sqlgen import (
    NULL,
    blank_cell,
    conversion_failed,
    fail_when,
    plain_error,
    probe,
    sql_text,
)
from dsmsyncd.server.transforms.typecheck import Call

T, N = SoqlType.TEXT, SoqlType.NUMBER
FT, D = SoqlType.CALENDAR_DATE, SoqlType.DATE
_TIMES = frozenset({FT, D})

# chrono-style fraction tokens that DuckDB spells differently.
_FORMAT_REWRITES = (
    ("%.3f", ".%g"),
    ("%.6f", ".%f"),
    ("%.9f", ".%n"),
    ("%.f", ".%f"),
    ("%:z", "%z"),
)


def _strptime_format(c: Call) -> str | None:
    """The DuckDB strptime format for argument 2, or None when it means ISO 8601."""
    fmt = c.literal_text(1, "format")
    if fmt.startswith("{ISO") or fmt.strip() in ("%+", ""):
        return None
    if fmt.strip() == "%s":
        return fmt
    for chrono, duck in _FORMAT_REWRITES:
        fmt = fmt.replace(chrono, duck)
    if not probe("SELECT try_strptime('', ?)", [fmt]):
        raise c.fail(f"{c.name}: {fmt!r} is not a supported strftime format", 1, "syntax")
    return fmt


def _zone(c: Call, arg: int) -> str:
    zone = c.literal_text(arg, "time zone")
    if not probe("SELECT timezone(?, TIMESTAMP '2020-01-01')", [zone]):
        raise c.fail(f"{c.name}: {zone!r} is not a known time zone (try 'UTC')", arg, "syntax")
    return sql_text(zone)


def _parse(c: Call, target: SoqlType) -> tuple[str, str]:
    x = c.args[0].value
    fmt = _strptime_format(c) if len(c.args) > 1 else None
    storage = "TIMESTAMP" if target is FT else "TIMESTAMPTZ"
    if fmt is None:
        x = blank_cell(x) or x  # '' casts to null and is no error, as null is
        value = f"TRY_CAST({x} AS {storage})"
    elif fmt.strip() == "%s":
        value = f"to_timestamp(TRY_CAST({x} AS DOUBLE))"
        if target is FT:
            value = f"timezone('UTC', {value})"
        value = f"(CASE WHEN abs(TRY_CAST({x} AS DOUBLE)) < 1e11 THEN {value} END)"
    else:
        value = f"try_strptime({x}, {sql_text(fmt)})"
        zoned = "%z" in fmt or "%Z" in fmt
        if (zoned and target is FT) or (not zoned and target is D):
            value = f"timezone('UTC', {value})"
    bad = f"trim({x}) <> '' AND {value} IS NULL"
    return value, fail_when(bad, conversion_failed(x, T, target))


@define("to_floating_timestamp", (T,), FT)
@define("to_floating_timestamp", (T, T), FT)
def _to_floating_text(c: Call) -> tuple[str, str]:
    return _parse(c, FT)


@define("to_fixed_timestamp", (T,), D)
@define("to_fixed_timestamp", (T, T), D)
def _to_fixed_text(c: Call) -> tuple[str, str]:
    return _parse(c, D)


@define("to_floating_timestamp", (FT,), FT)
@define("to_fixed_timestamp", (D,), D)
def _same_time(c: Call) -> tuple[str, str]:
    return c.args[0].value, NULL


@define("to_floating_timestamp", (D, T), FT)
@define("to_fixed_timestamp", (FT, T), D)
def _rezone(c: Call) -> tuple[str, str]:
    return f"timezone({_zone(c, 1)}, {c.args[0].value})", NULL


_EXTRACTS = {
    "y": "year({x})",
    "m": "month({x})",
    "d": "day({x})",
    "hh": "hour({x})",
    "mm": "minute({x})",
    "ss": "second({x})",
    "dow": "dayofweek({x})",
    "woy": "(least(week({x}), 52) - 1)",
}
_FLOATING_NAMES = {"year": "y", "month": "m", "day": "d", "hour": "hh", "minute": "mm"}
_FLOATING_NAMES |= {"second": "ss", "day_of_week": "dow", "week_of_year": "woy"}


def _extract(name: str, params: frozenset[SoqlType], sql: str) -> None:
    @define(name, (params,), N)
    def build(c: Call) -> tuple[str, str]:
        return numbers.from_integer(sql.format(x=c.args[0].value)), NULL


for _part, _sql in _EXTRACTS.items():
    _extract(f"date_extract_{_part}", _TIMES, _sql)
for _long, _part in _FLOATING_NAMES.items():
    _extract(f"floating_timestamp_{_long}", frozenset({FT}), _EXTRACTS[_part])


def _trunc(name: str, part: str) -> None:
    @define(name, (FT,), FT)
    @define(name, (D,), D)
    def build(c: Call) -> tuple[str, str]:
        storage = "TIMESTAMP" if c.result_type is FT else "TIMESTAMPTZ"
        return f"CAST(date_trunc('{part}', {c.args[0].value}) AS {storage})", NULL


_trunc("date_trunc_y", "year")
_trunc("date_trunc_ym", "month")
_trunc("date_trunc_ymd", "day")

_SECONDS = {"d": 86400, "hh": 3600, "mm": 60, "ss": 1}


def _add(name: str, seconds: int) -> None:
    @define(name, (FT, N), FT)
    @define(name, (D, N), D)
    def build(c: Call) -> tuple[str, str]:
        x, n = c.args[0].value, c.args[1].value
        span = f"({n} * {seconds})"
        ok = f"abs({span}) < 1e11"  # about 3000 years: keeps the result in range
        value = f"(CASE WHEN {ok} THEN {x} + to_microseconds(CAST({span} * 1e6 AS BIGINT)) END)"
        error = plain_error("out_of_range", f"{name} would leave the supported date range")
        return value, fail_when(f"NOT ({ok})", error)


for _part, _secs in _SECONDS.items():
    _add(f"datetime_add_{_part}", _secs)

_UNITS = {
    "seconds": "second",
    "minutes": "minute",
    "hours": "hour",
    "days": "day",
    "weeks": "week",
    "months": "month",
    "years": "year",
}


@define("datetime_diff", ("a", "a", T, T), N, note="whole units from t1 to t2 (t2 - t1)")
def _datetime_diff(c: Call) -> tuple[str, str]:
    t1, t2 = c.args[0], c.args[1]
    if t1.type not in _TIMES:
        raise c.fail(f"datetime_diff needs two timestamps, not {t1.type.value}", 0)
    zone = _zone(c, 2)
    unit = re.sub(r"\s+", " ", c.literal_text(3, "unit").strip().lower())
    a, b = t1.value, t2.value
    if t1.type is D:
        a, b = f"timezone({zone}, {a})", f"timezone({zone}, {b})"
    if unit in _UNITS:
        return numbers.from_integer(f"date_sub('{_UNITS[unit]}', {a}, {b})"), NULL
    if unit == "calendar weeks":
        return numbers.from_integer(f"date_diff('week', {a}, {b})"), NULL
    if unit == "business days":
        return _business_days(f"CAST({a} AS DATE)", f"CAST({b} AS DATE)"), NULL
    known = ", ".join([*_UNITS, "business days", "calendar weeks"])
    raise c.fail(f"datetime_diff: unknown unit {unit!r}; use one of {known}", 3)


def _business_days(d1: str, d2: str) -> str:
    """Weekdays from d1 to d2 counting both ends; negative when d2 is before d1."""
    lo, hi = f"least({d1}, {d2})", f"greatest({d1}, {d2})"
    n = f"(({hi} - {lo}) + 1)"
    first = f"isodow({lo})"
    rest = f"len(list_filter(range({n} % 7), lambda k: (({first} - 1 + k) % 7) < 5))"
    count = f"(({n} // 7) * 5 + {rest})"
    return numbers.from_integer(f"CASE WHEN {d2} < {d1} THEN -{count} ELSE {count} END")
