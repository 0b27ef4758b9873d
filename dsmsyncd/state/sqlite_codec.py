"""How a ``Job`` and its events are written to SQLite columns and read back.

Times are stored as integer microseconds since the epoch, in columns named ``*_us``:
exact round trips, and plain integer order in the indexes. Only aware datetimes are
accepted (``values.checked``); event details and routing snapshots are JSON
(``values.to_json``).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from dsmsyncd.state.model import Job, JobState
from dsmsyncd.state.values import TIME_FIELDS, checked, checked_field

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def column(field: str) -> str:
    """The column a ``Job`` field is stored in."""
    return f"{field}_us" if field in TIME_FIELDS else field


JOB_COLUMNS = ", ".join(column(field.name) for field in dataclasses.fields(Job))
"""Every column of a job, in ``Job`` field order: the SELECT list that ``job`` reads."""


def job(row: sqlite3.Row) -> Job:
    """A ``Job`` from a row selected with ``JOB_COLUMNS``."""
    values: dict[str, Any] = {}
    for name in row.keys():  # noqa: SIM118 (sqlite3.Row iterates values, not keys)
        value = row[name]
        if name.endswith("_us"):
            values[name.removesuffix("_us")] = None if value is None else from_us(value)
        else:
            values[name] = value
    values["state"] = JobState(values["state"])
    values["routing"] = json.loads(values["routing"]) if values.get("routing") else None
    return Job(**values)


def db_value(field: str, value: object) -> object:
    """What is written to ``column(field)`` for ``value``."""
    checked_field(field, value)
    return to_us(value) if isinstance(value, datetime) else value


def to_us(value: datetime) -> int:
    return (checked(value) - _EPOCH) // _MICROSECOND


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)
