"""systemd's watchdog: pings at half the interval while healthy, over a real AF_UNIX
datagram socket as systemd listens on one; the unit asks for them."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmsyncd.observe import sdnotify

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "dsmsyncd.service"


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    if len(os.fsencode(path)) >= 108:  # sun_path limit; pytest's tmp_path is usually shorter
        pytest.skip(f"{path} is too long for an AF_UNIX address")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def _received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


async def test_keep_watchdog_pings_at_half_the_interval_only_while_healthy(
    listener: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    verdicts = [True, True, False, False, True]
    looked_at: list[float] = []
    scripted_out = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def healthy() -> bool:
        looked_at.append(loop.time())
        if not verdicts:
            scripted_out.set()
            await asyncio.Event().wait()  # stays here until cancelled
        return verdicts.pop(0)

    with caplog.at_level(logging.INFO, logger="dsmsyncd.observe.sdnotify"):
        pinging = asyncio.create_task(sdnotify.keep_watchdog(0.2, healthy))
        await asyncio.wait_for(scripted_out.wait(), 10)
        pinging.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pinging

    assert _received(listener) == [b"WATCHDOG=1"] * 3  # one per healthy look, none else
    gaps = [later - earlier for earlier, later in itertools.pairwise(looked_at)]
    assert all(gap >= 0.09 for gap in gaps), gaps  # every 0.1 s: half of 0.2 s
    assert caplog.text.count("watchdog pings stop") == 1
    assert caplog.text.count("watchdog pings resume") == 1


def test_systemd_unit_asks_for_watchdog_pings() -> None:
    found = re.search(r"^WatchdogSec=(\d+)s$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None
    assert int(found[1]) >= 10  # pings come every half: room for a busy event loop
