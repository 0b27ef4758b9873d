"""What every section of the configuration is made of: the strict base model, durations,
and the walk that finds every resolved secret in a loaded configuration.

Kept apart from ``schema`` so that a section defined in a module of its own
(``notify``) shares them without importing the whole schema, which imports it.
"""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Section(BaseModel):
    """A table of the file: unknown keys are mistakes, and a loaded value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: object) -> float:
    """``500ms``, ``2s``, ``5m``, ``1h`` (or a bare number of seconds) → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like '500ms', '2s' or '5m'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError("expected a duration like '500ms', '2s' or '5m'")


Duration = Annotated[float, BeforeValidator(parse_duration)]


def loadable_ca_bundle(value: Path | None) -> Path | None:
    """``value`` if it loads as a PEM bundle of CA certificates, as a client will load it
    (so that ``run`` and ``check-config`` agree); else a ValueError that says the fix."""
    if value is not None:
        try:
            ssl.create_default_context().load_verify_locations(cafile=value)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot load CA certificates ({exc}); point ca_bundle at a PEM file "
                "of CA certificates"
            ) from None
    return value


def secret_texts(value: Any) -> list[str]:
    """Every ``SecretStr`` value held anywhere in ``value`` (a loaded config, a section):
    what must be scrubbed out of any text shown, whatever section it came from."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [t for name in type(value).model_fields for t in secret_texts(getattr(value, name))]
    if isinstance(value, list | tuple):
        return [t for item in value for t in secret_texts(item)]
    return []
