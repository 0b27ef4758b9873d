"""The daemon's state store: every file and every step of its job, durable before the next step.

``open_state_store(config.state.url)`` builds the store named by the config (SQLite,
the default for one daemon, or PostgreSQL); it is
not connected until used as ``async with store:`` (or ``await store.open()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dsmsyncd.config.state_url import check_state_url, is_postgres_url, sqlite_path_from_url
from dsmsyncd.state.lanes import ClusterView, LaneClaim, ReplicaIdentity, default_replica_name
from dsmsyncd.state.lock import StateLocked
from dsmsyncd.state.migrations import SCHEMA_VERSION
from dsmsyncd.state.model import (
    TERMINAL_STATES,
    ChunkRecord,
    Job,
    JobEvent,
    JobState,
    JobUpdate,
    NewJob,
    UploadPlan,
    UploadProgress,
    utc_now,
)
from dsmsyncd.state.sqlite import Clock, SqliteStateStore
from dsmsyncd.state.store import (
    LaneLost,
    SchemaTooNew,
    StaleTransition,
    StateStore,
    StateStoreError,
    StoreStatus,
    UnknownJob,
)

if TYPE_CHECKING:
    from dsmsyncd.state.postgres import PostgresStateStore
    from dsmsyncd.state.postgres_lock import ReplicaNameTaken

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL_STATES",
    "ChunkRecord",
    "ClusterView",
    "Job",
    "JobEvent",
    "JobState",
    "JobUpdate",
    "LaneClaim",
    "LaneLost",
    "NewJob",
    "PostgresStateStore",
    "ReplicaIdentity",
    "ReplicaNameTaken",
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
    "default_replica_name",
    "open_state_store",
    "sqlite_path_from_url",
    "utc_now",
]


def open_state_store(
    url: str,
    *,
    password: str | None = None,
    clock: Clock = utc_now,
    replica: ReplicaIdentity | None = None,
) -> StateStore:
    """Build the store for ``url``: ``sqlite:///ABSOLUTE/PATH``, ``sqlite:///:memory:``
    or ``postgresql://USER@HOST:PORT/DATABASE?sslmode=…`` (libpq's spelling).

    ``password``: PostgreSQL's, when the URL carries none (``[state] password``).
    ``replica``: the store is a daemon's, working under that name and lease timeout. On
    SQLite it locks the file against a second daemon (``StateLocked``); on PostgreSQL it
    locks the name against a second live replica under it (``ReplicaNameTaken``).
    Read-only users (``status``) leave it None. Raises ValueError
    naming the accepted forms when the URL is not one of them.
    """
    check_state_url(url)
    if is_postgres_url(url):
        from dsmsyncd.state.postgres import PostgresStateStore

        return PostgresStateStore(url, password=password, clock=clock, replica=replica)
    return SqliteStateStore(sqlite_path_from_url(url), clock=clock, replica=replica)


def __getattr__(name: str) -> object:
    """The PostgreSQL store's names, imported on first use: asyncpg costs every command
    (``push``, a SQLite daemon) tens of milliseconds of start-up it never needs."""
    if name == "PostgresStateStore":
        from dsmsyncd.state.postgres import PostgresStateStore

        return PostgresStateStore
    if name == "ReplicaNameTaken":
        from dsmsyncd.state.postgres_lock import ReplicaNameTaken

        return ReplicaNameTaken
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
