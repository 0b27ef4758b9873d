"""``dsmsyncd run`` on a state store it cannot use: exit 3 and one line saying why.

Through the real command line, as systemd or an operator starts it: a database written
by a newer dsmsyncd, a file that is not a database, a folder that cannot be made. None
may end in a traceback; each ends with the startup-failure exit code and a log line
that names the file and what to do.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dsmsyncd.cli.exit_codes import ExitCode

DSMSYNCD = Path(sys.executable).with_name("dsmsyncd")

CONFIG = """
[target]
url = "http://127.0.0.1:1"
token = "unused-token"

[state]
url = "sqlite:///{database}"

[admin]
listen = "127.0.0.1:0"

[[source]]
name = "drop"
url = "file://{root}/drop"

[[mapping]]
source = "drop"
match = "*.csv"
dataset = "abcd-1234"
action = "update"
on_success = "keep"
quarantine_dir = "{root}/quarantine"
"""


def _too_new(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_us INT)")
        db.execute("INSERT INTO schema_version VALUES (99, 0)")
    db.close()


def _not_a_database(database: Path) -> None:
    database.write_bytes(b"these are not the bytes of an SQLite database\n" * 40)


def _under_a_file(database: Path) -> None:
    database.parent.write_text("a file where the state folder should be\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("make", "where", "reason"),
    [
        (_too_new, "state.db", "has schema version 99, but this dsmsyncd knows versions up to"),
        (_not_a_database, "state.db", "cannot open state database"),
        (_under_a_file, "taken/state.db", "taken"),
    ],
    ids=["schema-too-new", "not-a-database", "folder-cannot-be-made"],
)
def test_run_on_an_unusable_state_store_exits_3_with_one_line(
    tmp_path: Path, make: Callable[[Path], None], where: str, reason: str
) -> None:
    database = tmp_path / where
    make(database)
    config = tmp_path / "dsmsyncd.toml"
    config.write_text(CONFIG.format(database=database, root=tmp_path), encoding="utf-8")

    result = subprocess.run(
        [str(DSMSYNCD), "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )

    assert result.returncode == ExitCode.STARTUP_FAILURE == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # logs are JSON lines off a terminal
    record = json.loads(line)
    assert record["level"] == "error"
    assert record["event"].startswith("startup failed: ")
    assert reason in record["event"]
    assert str(tmp_path) in record["event"]  # the file it is about
    assert "exception" not in record
