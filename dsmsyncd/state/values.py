"""How a job's values are checked and serialised, whichever database stores them.

One rule each, shared by the SQLite and PostgreSQL stores: a naive datetime is
refused (never guessed), and event details and routing snapshots are JSON with
sorted keys and datetimes as ISO 8601.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

TIME_FIELDS = frozenset(
    {"mtime", "discovered_at", "updated_at", "started_at", "finished_at", "next_attempt_at"}
)
"""The ``Job`` fields that hold times."""


def checked(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give a timezone (UTC)")
    return value


def checked_field(field: str, value: object) -> object:
    """``value`` for the ``Job`` field ``field``: a time field takes an aware datetime."""
    if field in TIME_FIELDS and value is not None:
        if not isinstance(value, datetime):
            raise TypeError(f"{field} must be a datetime, not {type(value).__name__}")
        checked(value)
    return value


def to_json(details: Mapping[str, object]) -> str:
    def fallback(value: object) -> str:
        return value.isoformat() if isinstance(value, datetime) else str(value)

    return json.dumps(dict(details), default=fallback, sort_keys=True)
