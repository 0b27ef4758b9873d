"""Fixtures of the daemon wing: its client on the local server, a state store, S3.

The local server itself (``server``) comes from ``tests/conftest.py``. The S3 store is
moto's standalone server (``tests/daemon/support/moto_server.py``), one for the whole session:
each test makes its own bucket (``new_bucket_name``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dsmsyncd.dsmapi import DsmapiClient
from dsmsyncd.server.main import RunningServer
from dsmsyncd.state import SqliteStateStore
from tests.daemon.support.datasets import robot_client
from tests.daemon.support.fake_clock import FakeClock
from tests.daemon.support.moto_server import (
    FAKE_KEY_ID,
    FAKE_SECRET,
    REGION,
    MotoServer,
    s3_client,
    start_moto_server,
)
from tests.daemon.support.state_backends import (
    StoreFactory,
    create_database,
    drop_database,
    postgres_factory,
    session_database,
)
from tests.support.postgres_source import admin_url

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[DsmapiClient]:
    """The daemon's client signed in as ``robot``, to set datasets up as a user would."""
    async with robot_client(server.url) as signed_in:
        yield signed_in


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStateStore]:
    async with SqliteStateStore(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def s3(moto: MotoServer) -> AsyncIterator[S3Client]:
    """A client of moto for arranging tests (made as the daemon makes its own)."""
    async with s3_client(moto) as arranging:
        yield arranging


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials in the environment; no real AWS config or metadata service used."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database made for this test session (fails, never skips, without one)."""
    admin, url = session_database()
    try:
        yield url
    finally:
        asyncio.run(drop_database(admin, url))


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """A database no store has touched yet (the session's one has earlier tests' schemas),
    of this test's own: a fresh schema to migrate, or the state replicas share."""
    admin = admin_url()
    url = await create_database(admin)
    try:
        yield url
    finally:
        await drop_database(admin, url)


@pytest.fixture(params=["sqlite", "postgres"])
def state_backend_database(request: pytest.FixtureRequest) -> str | None:
    """Which implementation (by its session database: None for SQLite), resolved here,
    outside the test's event loop, because making the database runs a loop of its own."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def state_backend(state_backend_database: str | None, tmp_path: Path) -> StoreFactory:
    """Each state store implementation in turn, on a fresh database of its own."""
    if state_backend_database is None:
        return StoreFactory("sqlite", sqlite_path=tmp_path / "state" / "dsmsyncd.db")
    return await postgres_factory(state_backend_database)
