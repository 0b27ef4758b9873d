"""The daemon's state store: every file and every step of its job, durable before the next step.

``open_state_store(config.state.url)`` builds the store named by the config; it is
not connected until used as ``async with store:`` (or ``await store.open()``).
"""

from __future__ import annotations

from dsmsyncd.config.state_url import check_state_url, sqlite_path_from_url
from dsmsyncd.state.lock import StateLocked
from dsmsyncd.state.migrations import SCHEMA_VERSION
from dsmsyncd.state.model import (
    TERMINAL_STATES,
    ChunkRecord,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    UploadPlan,
    UploadProgress,
    utc_now,
)
from dsmsyncd.state.sqlite import Clock, SqliteStateStore
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
    "ChunkRecord",
    "Job",
    "JobEvent",
    "JobState",
    "JobUpdate",
    "SchemaTooNew",
    "SqliteStateStore",
    "StaleTransition",
    "StateLocked",
    "StateStore",
    "StateStoreError",
    "StoreStatus",
    "UnknownJob",
    "UploadPlan",
    "UploadProgress",
    "check_state_url",
    "open_state_store",
    "sqlite_path_from_url",
    "utc_now",
]


def open_state_store(url: str, *, clock: Clock = utc_now, exclusive: bool = False) -> StateStore:
    """Build the store for ``url``: ``sqlite:///ABSOLUTE/PATH`` or ``sqlite:///:memory:``.

    ``exclusive``: the daemon's store, locked against a second daemon while open
    (``StateLocked``); read-only users (``status``) leave it False. Raises ValueError
    naming the accepted forms when the URL is not one of them.
    """
    check_state_url(url)
    return SqliteStateStore(sqlite_path_from_url(url), clock=clock, exclusive=exclusive)
