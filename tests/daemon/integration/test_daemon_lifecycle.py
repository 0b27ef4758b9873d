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
from tests.daemon.support.config_text import target_state_admin
from tests.daemon.support.in_loop import daemon_running
from tests.daemon.support.log_lines import watching

CONFIG = """[limits]
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
    text = target_state_admin(server.url, root) + CONFIG.format(root=root, jobs=jobs)
    path.write_text(text, encoding="utf-8")


async def test_daemon_ready_then_sighup_reload_keeps_old_config_when_new_is_bad(
    server: RunningServer, tmp_path: Path
) -> None:
    (tmp_path / "drop").mkdir()
    path = tmp_path / "dsmsyncd.toml"
    _write(path, server, tmp_path, jobs=2)
    daemon = Daemon(path, load_config(path))
    async with daemon_running(daemon), aiohttp.ClientSession() as http:
        async with http.get(f"{daemon.admin_url}/readyz") as response:
            assert response.status == 200, await response.text()
        async with http.get(f"{daemon.admin_url}/status") as response:
            status = json.loads(await response.text())
            assert status["target"]["url"] == server.url

        with watching("dsmsyncd.daemon.lifecycle", "reload refused") as refused:
            path.write_text("[target]\nurl = 'not a url'\n", encoding="utf-8")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(refused.seen.wait(), 10)
        assert "target.url" in refused.text
        assert daemon.config.limits.max_concurrent_jobs == 2

        lifecycle = "dsmsyncd.daemon.lifecycle"
        with watching(lifecycle, "configuration reloaded", logging.INFO) as reloaded:
            _write(path, server, tmp_path, jobs=7)
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(reloaded.seen.wait(), 10)
        assert daemon.config.limits.max_concurrent_jobs == 7
