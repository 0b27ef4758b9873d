"""The daemon under a systemd watchdog: READY=1, then WATCHDOG=1 at half the interval from
its main loop while its state store answers, none once it stops answering.

A real AF_UNIX datagram socket stands for systemd's notify socket; the daemon runs
in-process with ``WATCHDOG_USEC`` set as systemd sets it for the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmsyncd.config import load_config
from dsmsyncd.daemon.lifecycle import Daemon

INTERVAL_S = 0.4

CONFIG = """
[target]
url = "http://127.0.0.1:1"
token = "unused-token"

[state]
url = "sqlite:///{root}/state.db"

[admin]
listen = "127.0.0.1:0"

[limits]
drain_timeout = "5s"

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


class _Seen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    if len(os.fsencode(path)) >= 108:  # sun_path limit; pytest's tmp_path is usually shorter
        pytest.skip(f"{path} is too long for an AF_UNIX address")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", str(int(INTERVAL_S * 1_000_000)))
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        yield sock


async def _next(sock: socket.socket) -> bytes:
    return await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), 10)


def _pending(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


async def test_daemon_pings_the_watchdog_while_its_state_store_answers(
    systemd: socket.socket, tmp_path: Path
) -> None:
    (tmp_path / "drop").mkdir()
    path = tmp_path / "dsmsyncd.toml"
    path.write_text(CONFIG.format(root=tmp_path), encoding="utf-8")
    daemon = Daemon(path, load_config(path))
    stopped_pinging = _Seen("watchdog pings stop")
    logging.getLogger("dsmsyncd.observe.sdnotify").addHandler(stopped_pinging)
    runner = asyncio.create_task(daemon.run())
    try:
        assert await _next(systemd) == b"READY=1"
        assert [await _next(systemd), await _next(systemd)] == [b"WATCHDOG=1"] * 2

        assert daemon._store is not None
        await daemon._store.close()  # a store that no longer answers
        await asyncio.wait_for(stopped_pinging.event.wait(), 10)
        _pending(systemd)
        await asyncio.sleep(INTERVAL_S)  # two periods in which a ping would have come
        assert _pending(systemd) == []
    finally:
        logging.getLogger("dsmsyncd.observe.sdnotify").removeHandler(stopped_pinging)
        daemon.stop.set()
        assert await asyncio.wait_for(runner, 30) == 0
    assert _pending(systemd) == [b"STOPPING=1"]
