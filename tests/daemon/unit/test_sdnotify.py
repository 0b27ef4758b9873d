"""sd_notify against a real AF_UNIX datagram socket, as systemd listens on one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dsmsyncd.observe import sdnotify


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    with contextlib.ExitStack() as stack:
        folder = tmp_path
        if len(os.fsencode(folder / "notify")) >= 108:  # sun_path's limit: a short folder
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/tmp")))
        path = folder / "notify"
        sock = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
        sock.bind(str(path))
        sock.settimeout(5)  # a bound on a failing test, not synchronisation
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_ready_sends_ready_to_notify_socket(listener: socket.socket) -> None:
    assert sdnotify.ready() is True

    assert listener.recv(4096) == b"READY=1"


def test_ready_with_status_sends_both_lines(listener: socket.socket) -> None:
    sdnotify.ready("watching 2 sources")

    assert listener.recv(4096) == b"READY=1\nSTATUS=watching 2 sources"


def test_status_folds_newlines_so_text_cannot_add_assignments(listener: socket.socket) -> None:
    sdnotify.status("file a.csv\nREADY=1")

    assert listener.recv(4096) == b"STATUS=file a.csv READY=1"


def test_stopping_and_watchdog_send_their_assignments(listener: socket.socket) -> None:
    sdnotify.stopping()
    sdnotify.watchdog()

    assert [listener.recv(4096), listener.recv(4096)] == [b"STOPPING=1", b"WATCHDOG=1"]


def test_notify_reaches_abstract_namespace_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"dsmsyncd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)

        assert sdnotify.notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_notify_without_notify_socket_is_a_noop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)

    assert sdnotify.ready() is False


def test_notify_to_missing_socket_returns_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))

    assert sdnotify.watchdog() is False
    assert "cannot notify systemd" in caplog.text


def test_notify_refuses_non_unix_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")

    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval_reads_usec_for_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    assert sdnotify.watchdog_interval() == 30.0


def test_watchdog_interval_ignores_another_process_watchdog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))

    assert sdnotify.watchdog_interval() is None


def test_watchdog_interval_is_none_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)

    assert sdnotify.watchdog_interval() is None


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

    listener.setblocking(False)
    pings = []
    with contextlib.suppress(BlockingIOError):
        while True:
            pings.append(listener.recv(4096))
    assert pings == [b"WATCHDOG=1"] * 3  # one per healthy look, none else
    gaps = [later - earlier for earlier, later in itertools.pairwise(looked_at)]
    assert all(gap >= 0.09 for gap in gaps), gaps  # every 0.1 s: half of 0.2 s
    assert caplog.text.count("watchdog pings stop") == 1
    assert caplog.text.count("watchdog pings resume") == 1
