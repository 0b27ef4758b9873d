"""The state stores the store tests run against: SQLite on a file, and PostgreSQL.

PostgreSQL comes from ``DSMSYNCD_TEST_POSTGRES_URL`` (``tests/support/postgres_source.py``
says where that comes from: the server on 127.0.0.1:5432 by default, else a throwaway
one the run starts). One database with a random name is made per test session and
dropped at its end; each test gets a schema of its own in it (``search_path``), which is
far cheaper than a database per test. When no server answers, the tests fail and say how
to provide one: the PostgreSQL store is part of the contract and CI runs it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from dsmsyncd.state import (
    PostgresStateStore,
    ReplicaIdentity,
    SqliteStateStore,
    StateStore,
    utc_now,
)
from tests.support.postgres_source import (
    POSTGRES_PROBLEM_ENV,
    admin_url,
    connection_failure,
    unavailable_message,
)

Clock = Callable[[], datetime]


def database_url(admin: str, name: str) -> str:
    """``admin`` with its database replaced by ``name`` (query, e.g. sslmode, kept)."""
    parts = urlsplit(admin)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(admin: str) -> str:
    """A new database with a random name; its URL. Fails the test when none answers."""
    name = f"dsmsyncd_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(admin, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        problem = os.environ.get(POSTGRES_PROBLEM_ENV)
        pytest.fail(unavailable_message(admin, connection_failure(exc), problem), pytrace=False)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(admin, name)


async def drop_database(admin: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass(frozen=True)
class StoreFactory:
    """Builds stores on one database (a restart is a second store on it) and runs raw SQL."""

    backend: str
    sqlite_path: Path | None = None
    postgres_url: str | None = None
    schema: str | None = None

    def new(self, clock: Clock = utc_now, *, replica: ReplicaIdentity | None = None) -> StateStore:
        """A store on the database: a daemon's (``replica``) or a reader's."""
        if self.sqlite_path is not None:
            return SqliteStateStore(self.sqlite_path, clock=clock, replica=replica)
        assert self.postgres_url is not None
        return PostgresStateStore(
            self.postgres_url,
            clock=clock,
            replica=replica,
            server_settings=self._settings(),
        )

    async def execute(self, sql: str) -> None:
        """Run ``sql`` outside any store (to set a database up as another release left it)."""
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as raw:
                raw.execute(sql)
            raw.close()
            return
        conn = await asyncpg.connect(self.postgres_url, server_settings=self._settings())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def fetch_ints(self, sql: str) -> list[int]:
        """The first column of ``sql``'s rows, as integers."""
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path) as raw:
                values = [int(row[0]) for row in raw.execute(sql)]
            raw.close()
            return values
        conn = await asyncpg.connect(self.postgres_url, server_settings=self._settings())
        try:
            return [int(row[0]) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    def _settings(self) -> dict[str, str]:
        return {} if self.schema is None else {"search_path": self.schema}


async def postgres_factory(url: str) -> StoreFactory:
    """A factory on a schema of its own in the session's database ``url``."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return StoreFactory("postgres", postgres_url=url, schema=schema)


def session_database() -> tuple[str, str]:
    """(admin URL, new database URL), made outside any test's event loop."""
    admin = admin_url()
    return admin, asyncio.run(create_database(admin))
