"""One end-to-end test's site: folders, the daemon's config file, its state read back.

The daemon runs either in-process (``inprocess.running_daemon``) or as a child process
(``processes.DaemonProcess``); either way it is configured by ``Site.write_config``
and its progress is read from the SQLite state store it writes (``Site.jobs``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsmsyncd.state import JobState
from tests.daemon.support.folders import Folders, with_default_action
from tests.support.local_server import ROBOT


@dataclass
class Site(Folders):
    """One test's folders and daemon config file."""

    server_url: str
    mappings: list[dict[str, Any]] = field(default_factory=list)
    min_age: str = "100ms"
    limits: dict[str, Any] = field(default_factory=dict)
    # [target] keys besides the url and credentials (request_timeout ...).
    target: dict[str, Any] = field(default_factory=dict)
    # The [[source]] "drop" keys other than its name; a drop folder unless told.
    source: dict[str, Any] | None = None
    # [[notify]] tables, each as its keys.
    notify: list[dict[str, Any]] = field(default_factory=list)
    # Other top-level tables (``log_dataset`` ...): name → keys.
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    # More [[source]] tables after "drop", each with its name (a bucket beside the folder).
    more_sources: list[dict[str, Any]] = field(default_factory=list)

    state_db: Path = field(init=False)
    config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.state_db = self.root / "state.db"
        self.config_path = self.root / "dsmsyncd.toml"

    def map(self, dataset: str, match: str = "*.csv", **options: Any) -> None:
        """A mapping from ``drop`` (``action = "update"`` unless told otherwise)."""
        self.mappings.append({"match": match, "dataset": dataset, **with_default_action(options)})

    def write_config(
        self,
        path: Path | None = None,
        *,
        state: dict[str, Any] | None = None,
        server_url: str | None = None,
    ) -> Path:
        """The config file (``path``, else ``config_path``); ``state`` are the [state]
        keys (this site's SQLite file unless told), ``server_url`` the target's URL
        (this site's unless told: a replica may reach the server through a proxy)."""
        self.drop.mkdir(parents=True, exist_ok=True)
        secret = self.root / "robot.password"
        secret.write_text(ROBOT[1] + "\n", encoding="utf-8")
        limits = {"max_concurrent_jobs": 2, "drain_timeout": "20s", **self.limits}
        lines = [
            "[target]",
            f'url = "{server_url or self.server_url}"',
            f'username = "{ROBOT[0]}"',
            f'password_file = "{secret}"',
            *(f"{key} = {_toml(value)}" for key, value in self.target.items()),
            "[state]",
            *_pairs(state or {"url": f"sqlite:///{self.state_db}"}),
            "[admin]",
            'listen = "127.0.0.1:0"',
            "[limits]",
            *_pairs(limits),
        ]
        for table, keys in self.tables.items():
            lines += [f"[{table}]", *_pairs(keys)]
        lines += ["[[source]]", 'name = "drop"']
        source = self.source or {"url": f"file://{self.drop}", "min_age": self.min_age}
        lines += _pairs({"poll_interval": "2s", **source})
        for more in self.more_sources:
            lines += ["[[source]]", *_pairs({"poll_interval": "2s", **more})]
        for mapping in self.mappings:
            options = {
                "source": "drop",
                "archive_dir": str(self.archive),
                "quarantine_dir": str(self.quarantine),
                **mapping,
            }
            lines += ["[[mapping]]", *_pairs(options)]
        for target in self.notify:
            lines += ["[[notify]]", *_pairs(target)]
        written = path or self.config_path
        written.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return written

    def drop_file(self, name: str, content: bytes, *, mtime: float | None = None) -> Path:
        """Write as ``NAME.part`` and rename, as a careful writer does."""
        target = self.drop / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(content)
        if mtime is not None:
            os.utime(partial, (mtime, mtime))
        os.replace(partial, target)
        return target

    def jobs(self) -> list[dict[str, Any]]:
        """Every job row of the state store, read-only (works while a daemon writes it)."""
        if not self.state_db.exists():
            return []
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state_db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute("SELECT * FROM jobs ORDER BY id")]

    def published_order(self) -> list[str]:
        """Relative paths in the order their jobs reached PUBLISHED (event order)."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.state_db}?mode=ro", uri=True, timeout=5)
        ) as conn:
            rows = conn.execute(
                "SELECT jobs.relative_path FROM job_events JOIN jobs ON jobs.id = job_id"
                " WHERE job_events.state = 'published' AND job_events.previous_state = 'applying'"
                " ORDER BY job_events.id"
            ).fetchall()
        return [str(row[0]) for row in rows]


def _pairs(table: dict[str, Any]) -> list[str]:
    return [f"{key} = {_toml(value)}" for key, value in table.items()]


def _toml(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def job_state(site: Site, name: str) -> JobState | None:
    for row in site.jobs():
        if row["relative_path"] == name:
            return JobState(row["state"])
    return None


def big_csv(rows: int) -> bytes:
    """``id,name,score`` rows, about 30 bytes each."""
    lines = [b"id,name,score\n"]
    lines += [b"%d,name-%d-xxxxxxxxxx,%d\n" % (i, i, i % 1000) for i in range(rows)]
    return b"".join(lines)
