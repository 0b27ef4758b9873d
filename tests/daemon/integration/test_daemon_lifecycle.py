"""The daemon's lifecycle in-process: readiness, SIGHUP reload (bad config kept out), drain,
systemd's watchdog."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from dsmsyncd.config import load_config
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

        reload = "dsmsyncd.daemon.reload"
        with watching(reload, "reload refused") as refused:
            path.write_text("[target]\nurl = 'not a url'\n", encoding="utf-8")
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(refused.seen.wait(), 10)
        assert "target.url" in refused.text
        assert daemon.config.limits.max_concurrent_jobs == 2

        with watching(reload, "configuration reloaded", logging.INFO) as reloaded:
            _write(path, server, tmp_path, jobs=7)
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(reloaded.seen.wait(), 10)
        assert daemon.config.limits.max_concurrent_jobs == 7


async def test_daemon_pings_the_watchdog_while_its_state_store_answers(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """READY=1, then WATCHDOG=1 at half the interval from the main loop while the state
    store answers, and no more once it stops answering; a real socket stands for systemd's."""
    interval_s, notify = 0.4, tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(notify))
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
        monkeypatch.setenv("WATCHDOG_USEC", str(int(interval_s * 1_000_000)))
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        await _watchdog_pinged_while_store_answers(systemd, server, tmp_path)


async def _watchdog_pinged_while_store_answers(
    systemd: socket.socket, server: RunningServer, root: Path
) -> None:
    loop = asyncio.get_running_loop()

    async def heard() -> bytes:
        return await asyncio.wait_for(loop.sock_recv(systemd, 4096), 10)

    def pending() -> list[bytes]:
        found = []
        with contextlib.suppress(BlockingIOError):
            while True:
                found.append(systemd.recv(4096))
        return found

    (root / "drop").mkdir()
    path = root / "dsmsyncd.toml"
    _write(path, server, root, jobs=1)
    daemon = Daemon(path, load_config(path))
    with watching("dsmsyncd.observe.sdnotify", "watchdog pings stop") as stopped_pinging:
        async with daemon_running(daemon):
            assert await heard() == b"READY=1"
            assert [await heard(), await heard()] == [b"WATCHDOG=1"] * 2
            assert daemon._store is not None
            await daemon._store.close()  # a state store that no longer answers
            await asyncio.wait_for(stopped_pinging.seen.wait(), 10)
            pending()
    assert pending() == [b"STOPPING=1"]
