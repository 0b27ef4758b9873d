"""Where the tests' PostgreSQL comes from: the configured server, else a throwaway one the
run starts, else a failure that says how to provide one.

The throwaway here listens on a free port of its own; the run's server (127.0.0.1:5432
or ``DSMSYNCD_TEST_POSTGRES_URL``) is only read from, never stopped or changed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from tests.support.ports import free_port
from tests.support.postgres_source import (
    PostgresUnavailable,
    admin_url,
    connect_error,
    postgres_for_run,
)
from tests.support.throwaway_postgres import bin_dir_candidates


def nothing_listens_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"


async def data_directory(url: str) -> str:
    """Which server answers at ``url`` (by its data directory), after a ``SELECT 1``."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        return str(await conn.fetchval("SHOW data_directory"))
    finally:
        await conn.close()


def test_throwaway_server_starts_where_nothing_answers_and_is_gone_after_stop() -> None:
    url = nothing_listens_url()
    throwaway = postgres_for_run(url)
    assert throwaway is not None
    try:
        assert asyncio.run(data_directory(throwaway.url)) == str(throwaway.data_dir)
    finally:
        throwaway.stop()
    refused = asyncio.run(connect_error(throwaway.url))
    assert refused is not None
    assert refused.startswith("ConnectionRefusedError")
    assert not throwaway.directory.exists()


def test_no_throwaway_when_the_configured_server_answers() -> None:
    assert postgres_for_run(admin_url()) is None


def test_a_server_that_answers_but_refuses_counts_as_answering() -> None:
    """A wrong database (or password) is the user's mistake to see, not to paper over."""
    wrong_database = admin_url().rsplit("/", 1)[0] + "/no_such_database_here"
    assert asyncio.run(connect_error(wrong_database)) is None


def test_without_binaries_the_failure_says_how_to_provide_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    candidates = bin_dir_candidates(versions_root=tmp_path / "no-postgresql")
    port = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with pytest.raises(PostgresUnavailable) as failed:
        postgres_for_run(url, candidates)
    problem = f"no directory with initdb and pg_ctl (searched: {empty})"
    assert failed.value.problem == problem
    message = str(failed.value)
    assert message.startswith(
        "the PostgreSQL tests need a PostgreSQL server, and none answered at "
        f"postgresql://********@127.0.0.1:{port}/postgres "
        "(DSMSYNCD_TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/postgres)"
        ": ConnectionRefusedError"
    )
    assert message.endswith(
        f"; no throwaway server could be started either: {problem}. Provide one: set "
        "DSMSYNCD_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@HOST:PORT/DATABASE of a role "
        "that may CREATE DATABASE; or run a server on 127.0.0.1:5432 with trust "
        "authentication for user postgres; or install PostgreSQL's server binaries "
        "(initdb and pg_ctl on PATH or under /usr/lib/postgresql/<version>/bin) and the "
        "tests start a throwaway server themselves (as root they run it as the user "
        "postgres or nobody)."
    )


def test_binaries_are_looked_for_on_path_then_newest_version_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for version in ("9.6", "16", "15"):
        (tmp_path / "postgresql" / version / "bin").mkdir(parents=True)
    monkeypatch.setenv("PATH", "/opt/a:/opt/b")
    found = bin_dir_candidates(versions_root=tmp_path / "postgresql")
    versions = [tmp_path / "postgresql" / v / "bin" for v in ("16", "15", "9.6")]
    assert found == [Path("/opt/a"), Path("/opt/b"), *versions]
