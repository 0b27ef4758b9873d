"""``dsmsyncd run`` on a state store it cannot use: exit 3 and one line saying why.

Through the real command line, as systemd or an operator starts it: a database written
by a newer dsmsyncd, a file that is not a database, a folder in the database's place.
None may end in a traceback; each ends with the startup-failure exit code and one log
line that names the file and what is wrong.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from dsmsyncd.cli.exit_codes import ExitCode
from tests.daemon.e2e.processes import run_cli
from tests.daemon.e2e.site import Site


def _too_new(database: Path) -> None:
    with closing(sqlite3.connect(database)) as db, db:
        db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_us INT)")
        db.execute("INSERT INTO schema_version VALUES (99, 0)")


def _not_a_database(database: Path) -> None:
    database.write_bytes(b"these are not the bytes of an SQLite database\n" * 40)


def _a_folder(database: Path) -> None:
    database.mkdir()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_too_new, "has schema version 99, but this dsmsyncd knows versions up to"),
        (_not_a_database, "file is not a database"),
        (_a_folder, "cannot open state database"),
    ],
    ids=["schema-too-new", "not-a-database", "a-folder"],
)
async def test_run_on_an_unusable_state_store_exits_3_with_one_line(
    site: Site, make: Callable[[Path], None], reason: str
) -> None:
    site.map("abcd-1234")
    config = site.write_config()
    make(site.state_db)

    result = await run_cli("run", "-c", str(config), within=60)

    assert result.code == ExitCode.STARTUP_FAILURE, result.err
    assert ExitCode.STARTUP_FAILURE.value == 3
    assert "Traceback" not in result.err
    assert result.out == ""
    [line] = result.err.splitlines()  # logs are JSON lines off a terminal
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["event"].startswith("startup failed: ")
    assert reason in record["event"]
    assert str(site.state_db) in record["event"]
    assert "exception" not in record
