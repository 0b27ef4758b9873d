"""The daemon's state store: every file and every step of its job, durable before the next step.

``open_state_store(config.state.url)`` builds the store named by the config; it is
not connected until used as ``async with store:`` (or ``await store.open()``).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from dsmsyncd.state.migrations import SCHEMA_VERSION
from dsmsyncd.state.model import (
    TERMINAL_STATES,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    utc_now,
)
from dsmsyncd.state.sqlite import MEMORY, Clock, SqliteStateStore
from dsmsyncd.state.store import (
    SchemaTooNew,
    StaleTransition,
    StateStore,
    StateStoreError,
    StoreStatus,
    UnknownJob,
)

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL_STATES",
    "Job",
    "JobEvent",
    "JobState",
    "JobUpdate",
    "SchemaTooNew",
    "SqliteStateStore",
    "StaleTransition",
    "StateStore",
    "StateStoreError",
    "StoreStatus",
    "UnknownJob",
    "open_state_store",
    "sqlite_path_from_url",
    "utc_now",
]


def open_state_store(url: str, *, clock: Clock = utc_now) -> StateStore:
    """Build the store for ``url``: ``sqlite:///ABSOLUTE/PATH`` or ``sqlite:///:memory:``.

    Raises ValueError naming the accepted forms when the URL is not one of them.
    """
    scheme = url.partition(":")[0].lower()
    if scheme in ("postgresql", "postgres"):
        raise ValueError(
            "state url: PostgreSQL state stores land with the multi-replica work and are not "
            "available yet; use sqlite:///ABSOLUTE/PATH (e.g. sqlite:///var/lib/dsmsyncd/state.db)"
        )
    return SqliteStateStore(sqlite_path_from_url(url), clock=clock)


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///var/lib/x.db`` → ``/var/lib/x.db`` (``sqlite:////var/lib/x.db`` too)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(
            f"state url {url!r}: expected sqlite:///ABSOLUTE/PATH or sqlite:///:memory:"
        )
    bad = parts.netloc or parts.query or parts.fragment or not parts.path.strip("/")
    if bad or not parts.path.startswith("/"):
        raise ValueError(
            f"state url {url!r}: expected sqlite:///ABSOLUTE/PATH (three slashes, no host, "
            "no query), e.g. sqlite:///var/lib/dsmsyncd/state.db"
        )
    path = unquote(parts.path)
    if path == f"/{MEMORY}":
        return MEMORY
    return "/" + path.lstrip("/")
