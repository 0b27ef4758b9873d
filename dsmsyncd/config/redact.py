"""Secrets masked in text: one rule for log lines, status pages, check-config output and
config errors (DESIGN.md invariant 5).

Three shapes are masked wherever they appear: the values of keys that name a secret
(``password``, ``app_token``, ``Authorization`` …, at any depth of a structure),
``user:password@`` in URLs, and ``token=…`` / ``Authorization: Basic …`` inside free
text (exception messages quote requests). It lives at the base of the package because
the config scrubs its own errors with it, and every layer above may show text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "********"

# Keys whose values are secrets, wherever they appear (event keys, nested dicts, extra=).
_SECRET_KEY = re.compile(
    r"passw(or)?d|secret|token|authorization|api[_-]?key|credential|cookie", re.IGNORECASE
)
# Userinfo in a URL: everything between "scheme://" and the last "@" before the path.
# Greedy up to the last "@", so that an unencoded "@" in a password is covered too.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^\s/\"'<>]+@")
# "app_token=abc", "password: abc", "Authorization: Basic abc" in free text; the
# Socrata app token often travels as a query parameter ($$app_token=...).
_INLINE_SECRET = re.compile(
    r"(?P<key>(?:passw(?:or)?d|secret|token|authorization|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<scheme>(?:basic|bearer|token)\s+)?"
    r"[^\s\"'&,;}]+",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """Mask credentials inside free text: URL userinfo and ``key=value`` secrets."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    return _INLINE_SECRET.sub(lambda m: f"{m['key']}{m['scheme'] or ''}{REDACTED}", text)


def redact_value(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with secrets masked, recursing through dicts, lists and tuples."""
    if key and value is not None and _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value
