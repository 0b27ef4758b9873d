"""Fixtures both wings share: the real local server on loopback, in the test's loop;
and, once per run, where PostgreSQL comes from (``tests/support/postgres_source.py``).

Wing-specific fixtures live in ``tests/server/conftest.py`` (HTTP sessions signed in
as its users) and ``tests/daemon/conftest.py`` (the daemon's client, state store, S3).
Plain helpers live in ``tests/support/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

# Helper modules assert too: let pytest explain their failures as it does a test's.
pytest.register_assert_rewrite(
    "tests.support", "tests.daemon", "tests.server", "tests.project.kustomize"
)

from dsmsyncd.config.redact import redact_text  # noqa: E402
from dsmsyncd.server.main import RunningServer  # noqa: E402
from tests.support.local_server import local_server  # noqa: E402
from tests.support.postgres_source import (  # noqa: E402
    POSTGRES_PROBLEM_ENV,
    POSTGRES_URL_ENV,
    PostgresUnavailable,
    admin_url,
    postgres_for_run,
)
from tests.support.throwaway_postgres import ThrowawayPostgres  # noqa: E402

_THROWAWAY = pytest.StashKey[ThrowawayPostgres]()
_ENVIRONMENT = pytest.StashKey[pytest.MonkeyPatch]()
_POSTGRES_NOTE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Decide once per run where PostgreSQL comes from, in the process that starts the
    xdist workers and before it starts them: they inherit its environment, so they all
    use the one throwaway server (if any) and none starts its own. Workers skip this."""
    if hasattr(config, "workerinput"):
        return
    environment = config.stash[_ENVIRONMENT] = pytest.MonkeyPatch()
    url = admin_url()
    try:
        throwaway = postgres_for_run(url)
    except PostgresUnavailable as exc:
        environment.setenv(POSTGRES_PROBLEM_ENV, exc.problem)
        config.stash[_POSTGRES_NOTE] = f"none ({exc.problem}); its tests will fail"
        return
    if throwaway is None:
        config.stash[_POSTGRES_NOTE] = redact_text(url)
        return
    config.stash[_THROWAWAY] = throwaway
    environment.setenv(POSTGRES_URL_ENV, throwaway.url)
    config.stash[_POSTGRES_NOTE] = (
        f"{throwaway.url}, a throwaway server in {throwaway.directory} "
        f"(nothing answered at {redact_text(url)})"
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    note = config.stash.get(_POSTGRES_NOTE, None)
    return None if note is None else f"postgresql: {note}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the throwaway server once every worker is done with it (the workers have ended
    before their controller unconfigures)."""
    throwaway = config.stash.get(_THROWAWAY, None)
    if throwaway is not None:
        throwaway.stop()
    environment = config.stash.get(_ENVIRONMENT, None)
    if environment is not None:
        environment.undo()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with local_server(tmp_path / "server") as running:
        yield running
