"""Typed cells of spreadsheets and geodata as the text a CSV of the same data would hold.

Input columns of tabular uploads are text (digest §1.3), so a workbook or a layer's
properties must read as its CSV export would: ``7`` not ``7.0`` (workbooks store every
number as a float), dates and times in ISO 8601 (``2024-01-31``,
``2024-01-31T08:30:00``), checkboxes as ``true``/``false``, a missing value as an empty
cell. Then the guessed output schema and every transform see the same text whichever
format the data came in.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

__all__ = ["cell_text"]

# Beyond 2**53 a float no longer holds every integer; such a number keeps its exponent.
_EXACT_INTEGER_LIMIT = 2**53


def cell_text(value: Any) -> str:
    """One typed cell (Python or numpy scalar) as text; ``None`` and NaN are empty."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # a numpy scalar: its Python value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        return _datetime_text(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _number_text(value: float) -> str:
    if math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < _EXACT_INTEGER_LIMIT:
        return str(int(value))
    return repr(value)


def _datetime_text(value: dt.datetime) -> str:
    """ISO 8601, to the second, or to the millisecond when the value has a fraction."""
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec)
