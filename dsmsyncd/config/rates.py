"""A transfer rate as an operator writes it: ``"10MB/s"``, ``"10 MiB"``, ``"800 kB/s"``, 10000000.

``[limits] max_upload_rate`` is bytes per second. Decimal units (kB, MB, GB) are
powers of 1000, as link speeds are sold; binary ones (KiB, MiB, GiB) powers of 1024.
``/s`` may be written or left out; a bare number is bytes per second; 0 is no limit.
"""

from __future__ import annotations

import re

__all__ = ["parse_rate"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*(?:/\s*s)?\s*$")
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_EXPECTED = "expected bytes per second, like '10MB/s', '10 MiB' or 10000000 (0: no limit)"


def parse_rate(value: object) -> int:
    """``"10MB/s"`` → 10_000_000 bytes per second; ValueError says the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(_EXPECTED)
    if isinstance(value, int | float) and value >= 0:
        return int(value)
    if isinstance(value, str):
        match = _RATE.match(value)
        if match and match.group(2).lower() in _UNITS:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ValueError(_EXPECTED)
