"""Where the tests' PostgreSQL comes from, and the one message that says how to provide it.

In order: the server at ``DSMSYNCD_TEST_POSTGRES_URL`` (default: the one every machine
of this project runs on 127.0.0.1:5432, trust authentication); where nothing answers
there, a throwaway server the run starts itself (``tests/support/throwaway_postgres.py``);
where that is impossible too, the PostgreSQL tests fail (never skip: the PostgreSQL
state store is part of the contract) with ``unavailable_message``, which says how to
provide one.

``tests/conftest.py`` calls ``postgres_for_run`` once per run, in the process that
starts the xdist workers and before it starts them, and hands the outcome to every
worker through the environment: the throwaway's URL in ``DSMSYNCD_TEST_POSTGRES_URL``,
or why none could start in ``DSMSYNCD_TEST_POSTGRES_PROBLEM``. So one server serves
all workers, and it is stopped once, when that process ends the run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from dsmsyncd.config.redact import redact_text
from tests.support.throwaway_postgres import (
    ThrowawayImpossible,
    ThrowawayPostgres,
    start_throwaway,
)

POSTGRES_URL_ENV = "DSMSYNCD_TEST_POSTGRES_URL"
POSTGRES_PROBLEM_ENV = "DSMSYNCD_TEST_POSTGRES_PROBLEM"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PROBE_TIMEOUT_S = 10


class PostgresUnavailable(RuntimeError):
    """No server answers and none could be started; the message says how to provide one."""

    def __init__(self, message: str, problem: str) -> None:
        super().__init__(message)
        self.problem = problem


def admin_url() -> str:
    """The URL the tests connect to (as a role that may CREATE DATABASE)."""
    return os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)


def unavailable_message(url: str, cause: str, throwaway_problem: str | None = None) -> str:
    """The one rule for a missing PostgreSQL: what was tried, why it failed, and the ways
    to provide a server."""
    started = (
        f"; no throwaway server could be started either: {throwaway_problem}"
        if throwaway_problem
        else ""
    )
    return (
        f"the PostgreSQL tests need a PostgreSQL server, and none answered at "
        f"{redact_text(url)} ({POSTGRES_URL_ENV}, default {DEFAULT_POSTGRES_URL}): "
        f"{cause}{started}. Provide one: set "
        f"{POSTGRES_URL_ENV}=postgresql://USER:PASSWORD@HOST:PORT/DATABASE of a role "
        "that may CREATE DATABASE; or run a server on 127.0.0.1:5432 with trust "
        "authentication for user postgres; or install PostgreSQL's server binaries "
        "(initdb and pg_ctl on PATH or under /usr/lib/postgresql/<version>/bin) and the "
        "tests start a throwaway server themselves (as root they run it as the user "
        "postgres or nobody)."
    )


def connection_failure(exc: BaseException) -> str:
    """An error of ``asyncpg.connect`` as one line (a timeout's own text is empty)."""
    return f"{type(exc).__name__}: {exc}"


async def connect_error(url: str) -> str | None:
    """Why nothing answers at ``url``, or None when a server does. A server that answers
    but refuses (wrong password, no such database) counts as answering: a throwaway would
    hide that mistake."""
    try:
        conn = await asyncpg.connect(url, timeout=PROBE_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return connection_failure(exc)
    except asyncpg.PostgresError:
        return None
    await conn.close()
    return None


def postgres_for_run(
    url: str, candidates: Sequence[Path] | None = None
) -> ThrowawayPostgres | None:
    """None when a server answers at ``url``; else a throwaway server started from the
    binaries in ``candidates`` (default: PATH, then /usr/lib/postgresql/*/bin).

    Raises ``PostgresUnavailable`` when neither is possible.
    """
    cause = asyncio.run(connect_error(url))
    if cause is None:
        return None
    try:
        return start_throwaway(candidates)
    except ThrowawayImpossible as exc:
        raise PostgresUnavailable(unavailable_message(url, cause, str(exc)), str(exc)) from exc
