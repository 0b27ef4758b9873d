"""``dsmsyncd push`` and ``run`` import only what their configuration uses.

Every command pays its interpreter's start and imports before its first request
(issue 9: ``push`` of one file is a short process). asyncpg is for a PostgreSQL state
store, aiobotocore and botocore are for ``s3://`` sources, DuckDB and the local server
are ``serve``'s, structlog is for the daemon's log set-up (``run`` configures logging;
push never does, and the job keys it binds need no structlog): a push, or a daemon
watching folders with a SQLite store before its logging is set up, imports none of
them. Each check runs in a fresh interpreter (``sys.modules`` of this one holds
whatever other tests imported), doing what the command does up to its first request;
the same script given a PostgreSQL URL and a bucket proves the check sees an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("asyncpg", "aiobotocore", "botocore", "duckdb", "dsmsyncd.server", "structlog")

# What ``dsmsyncd push`` and ``dsmsyncd run`` import and build before their first request:
# the command line, the push module and the pipeline, the daemon, a state store for the
# URL given, and a source for the URL given. Prints the heavy modules then loaded.
SCRIPT = f"""
import json, sys
from dsmsyncd.cli.main import build_parser
from dsmsyncd.cli import daemon_commands, push
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.daemon import lifecycle
from dsmsyncd.daemon.source_set import SourceSpec, build_source
from dsmsyncd.daemon.target import client_for
from dsmsyncd.pipeline.sync_job import Pipeline
from dsmsyncd.state import open_state_store

state_url, source_url = sys.argv[1], sys.argv[2]
build_parser().parse_args(["push", "f.csv", "--dataset", "abcd-1234", "-c", "c.toml"])
open_state_store(state_url)
build_source(SourceSpec(SourceConfig(name="drop", url=source_url), ()))
print(json.dumps(sorted(m for m in sys.modules if m.startswith({HEAVY}))))
"""


def heavy_imports(state_url: str, source_url: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, state_url, source_url],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_push_and_a_folder_daemon_on_sqlite_import_no_heavy_module(tmp_path: Path) -> None:
    assert heavy_imports("sqlite:///:memory:", f"file://{tmp_path}") == []


def test_a_postgres_store_and_a_bucket_import_theirs() -> None:
    loaded = heavy_imports("postgresql://dsmsyncd@127.0.0.1:5432/dsmsyncd", "s3://bucket/in/")
    assert {"asyncpg", "aiobotocore", "botocore"} <= {m.split(".")[0] for m in loaded}
    assert not {"duckdb", "dsmsyncd.server"} & set(loaded)
