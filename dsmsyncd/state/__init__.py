"""The daemon's state store: every file and every step of its job, durable before the next step.

``open_state_store(config.state.url)`` builds the store named by the config (SQLite,
the default for one daemon, or PostgreSQL); it is
not connected until used as ``async with store:`` (or ``await store.open()``).
"""

from __future__ import annotations

from dsmsyncd.config.state_url import check_state_url, is_postgres_url, sqlite_path_from_url
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
from dsmsyncd.state.postgres import PostgresStateStore
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
    "PostgresStateStore",
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


def open_state_store(
    url: str,
    *,
    password: str | None = None,
    clock: Clock = utc_now,
    exclusive: bool = False,
) -> StateStore:
    """Build the store for ``url``: ``sqlite:///ABSOLUTE/PATH``, ``sqlite:///:memory:``
    or ``postgresql://USER@HOST:PORT/DATABASE?sslmode=…`` (libpq's spelling).

    ``password``: PostgreSQL's, when the URL carries none (``[state] password``).
    ``exclusive``: the daemon's store, locked against a second daemon while open
    (``StateLocked``); read-only users (``status``) leave it False. Raises ValueError
    naming the accepted forms when the URL is not one of them.
    """
    check_state_url(url)
    if is_postgres_url(url):
        return PostgresStateStore(url, password=password, clock=clock, exclusive=exclusive)
    return SqliteStateStore(sqlite_path_from_url(url), clock=clock, exclusive=exclusive)
