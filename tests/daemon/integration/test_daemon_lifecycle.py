"""The daemon's lifecycle in-process: readiness, SIGHUP reload (bad config kept out), drain."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path

import aiohttp

from dsmsyncd.config.schema import load_config
from dsmsyncd.daemon.lifecycle import Daemon
from dsmsyncd.server.main import RunningServer
from tests.support.local_server import ROBOT

CONFIG = """
[target]
url = "{url}"
username = "{user}"
password = "{password}"

[state]
url = "sqlite:///{root}/state.db"

[admin]
listen = "127.0.0.1:0"

[limits]
max_concurrent_jobs = {jobs}
drain_timeout = "5s"

[[source]]
name = "drop"
url = "file://{root}/drop"
min_age = "100ms"

[[mapping]]
source = "drop"
match = "*.csv"
dataset = "abcd-1234"
action = "update"
on_success = "keep"
quarantine_dir = "{root}/quarantine"
"""


def _write(path: Path, server: RunningServer, root: Path, jobs: int) -> None:
    path.write_text(
        CONFIG.format(url=server.url, user=ROBOT[0], password=ROBOT[1], root=root, jobs=jobs),
        encoding="utf-8",
    )


class _LogEvent(logging.Handler):
    """Sets an event when a record containing ``needle`` is logged."""

    def __init__(self, needle: str) -> None:
        super().__init__()
        self.needle = needle
        self.seen = asyncio.Event()
        self.text = ""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.needle in message:
            self.text = message
            self.seen.set()


async def test_daemon_ready_then_sighup_reload_keeps_old_config_when_new_is_bad(
    server: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "drop").mkdir()
    path = tmp_path / "dsmsyncd.toml"
    _write(path, server, tmp_path, jobs=2)
    daemon = Daemon(path, load_config(path))
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 20)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{daemon.admin_url}/readyz") as response:
                assert response.status == 200, await response.text()
            async with http.get(f"{daemon.admin_url}/status") as response:
                status = json.loads(await response.text())
                assert status["target"]["url"] == server.url

            refused = _LogEvent("reload refused")
            logging.getLogger("dsmsyncd.daemon.lifecycle").addHandler(refused)
            try:
                path.write_text("[target]\nurl = 'not a url'\n", encoding="utf-8")
                os.kill(os.getpid(), signal.SIGHUP)
                await asyncio.wait_for(refused.seen.wait(), 10)
            finally:
                logging.getLogger("dsmsyncd.daemon.lifecycle").removeHandler(refused)
            assert "target.url" in refused.text
            assert daemon.config.limits.max_concurrent_jobs == 2

            reloaded = _LogEvent("configuration reloaded")
            daemon_log = logging.getLogger("dsmsyncd.daemon.lifecycle")
            daemon_log.addHandler(reloaded)
            level = daemon_log.level
            daemon_log.setLevel(logging.INFO)
            try:
                _write(path, server, tmp_path, jobs=7)
                os.kill(os.getpid(), signal.SIGHUP)
                await asyncio.wait_for(reloaded.seen.wait(), 10)
            finally:
                daemon_log.setLevel(level)
                daemon_log.removeHandler(reloaded)
            assert daemon.config.limits.max_concurrent_jobs == 7
    finally:
        daemon.stop.set()
        assert await asyncio.wait_for(runner, 30) == 0
