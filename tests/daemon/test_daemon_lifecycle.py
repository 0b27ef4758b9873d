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
from tests.daemon.conftest import ROBOT

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


async def test_daemon_pings_the_watchdog_while_its_state_store_answers(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """READY=1, then WATCHDOG=1 at half the interval from the main loop while the state
    store answers, none once it stops answering; a real socket stands for systemd's."""
    interval_s, notify = 0.4, tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(notify))
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify))
        monkeypatch.setenv("WATCHDOG_USEC", str(int(interval_s * 1_000_000)))
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        await _watchdog_pinged_while_store_answers(systemd, interval_s, server, tmp_path)


async def _watchdog_pinged_while_store_answers(
    systemd: socket.socket, interval_s: float, server: RunningServer, root: Path
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
    stopped_pinging = _LogEvent("watchdog pings stop")
    logging.getLogger("dsmsyncd.observe.sdnotify").addHandler(stopped_pinging)
    runner = asyncio.create_task(daemon.run())
    try:
        assert await heard() == b"READY=1"
        assert [await heard(), await heard()] == [b"WATCHDOG=1"] * 2
        assert daemon._store is not None
        await daemon._store.close()  # a state store that no longer answers
        await asyncio.wait_for(stopped_pinging.seen.wait(), 10)
        pending()
        await asyncio.sleep(interval_s)  # two periods, in which a ping would have come
        assert pending() == []
    finally:
        logging.getLogger("dsmsyncd.observe.sdnotify").removeHandler(stopped_pinging)
        daemon.stop.set()
        assert await asyncio.wait_for(runner, 30) == 0
    assert pending() == [b"STOPPING=1"]
