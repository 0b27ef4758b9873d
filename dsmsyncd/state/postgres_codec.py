"""How a ``Job`` is read from a PostgreSQL row: the column list and its decoding.

Shared by the store (``postgres.py``) and its lane SQL (``postgres_lanes.py``), which
both select whole jobs. PostgreSQL's types carry the values (``timestamptz``, ``jsonb``
as text), so only the state and the routing snapshot need decoding.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields as dataclass_fields
from typing import Any

from asyncpg import Record

from dsmsyncd.state.model import Job, JobState

JOB_COLUMNS = ", ".join(field.name for field in dataclass_fields(Job))
"""Every column of a job, in ``Job`` field order: the SELECT list ``job_from_row`` reads."""

LANE_ORDER = "mtime, relative_path, id"
"""Arrival order within a lane (invariant 4), as in ``migrations.LANE_ORDER``."""


def job_from_row(row: Record | Sequence[Any]) -> Job:
    """A ``Job`` from a row selected (or returned) with ``JOB_COLUMNS``."""
    values: dict[str, Any] = dict(zip(JOB_COLUMNS.split(", "), row, strict=True))
    values["state"] = JobState(values["state"])
    values["routing"] = json.loads(values["routing"]) if values["routing"] else None
    return Job(**values)
