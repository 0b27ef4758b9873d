"""The daemon and its CLI as child processes, and waiting on what they write.

``DaemonProcess`` is ``dsmsyncd run`` (readiness is its "started" log line);
``run_cli`` is any other command, run to its end while this event loop keeps serving.
Every wait is ``wait_until``: a real check, repeated, bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from tests.daemon.e2e.site import Site

POLL_S = 0.05
DSMSYNCD = str(Path(sys.executable).with_name("dsmsyncd"))

T = TypeVar("T")


async def wait_until(
    check: Callable[[], Awaitable[T | None]], *, within: float = 30.0, what: str = "condition"
) -> T:
    """Repeat the real check ``check`` until it returns a value other than None/False.

    For state that tells no one when it changes: a daemon running as a child process
    (its log file, its SQLite file, its HTTP endpoints) and in-process objects without
    an event (a source's stability gate). Where the in-process daemon offers an event,
    wait on it instead: ``RunningDaemon.until`` (every job run) or ``Supervisor.until``.
    """
    try:
        async with asyncio.timeout(within):
            while True:
                value = await check()
                if value is not None and value is not False:
                    return value
                await asyncio.sleep(POLL_S)
    except TimeoutError:
        raise AssertionError(f"timed out after {within:g}s waiting for {what}") from None


class DaemonProcess:
    """``dsmsyncd run -c FILE`` as a child process; its logs go to a file.

    ``FILE`` is the site's config unless told (replicas of one site have one each);
    ``env`` is added to ours (a bench runs another tree's daemon with ``PYTHONPATH``)."""

    def __init__(
        self,
        site: Site,
        log: Path,
        config: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.site = site
        self.log = log
        self.config = config or site.config_path
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(b"--- start ---\n")
            self.process = await asyncio.create_subprocess_exec(
                DSMSYNCD,
                "run",
                "-c",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        starts = self.log.read_text(encoding="utf-8").count("--- start ---")

        async def started() -> bool:
            assert self.process is not None
            if self.process.returncode is not None:
                raise AssertionError(f"daemon exited early:\n{self.log.read_text()}")
            text = self.log.read_text(encoding="utf-8")
            return text.split("--- start ---")[starts].count(" started: ") > 0

        await wait_until(started, within=30, what="the daemon's 'started' log line")

    def admin_url(self) -> str | None:
        text = self.log.read_text(encoding="utf-8").rsplit("--- start ---", 1)[-1]
        for line in text.splitlines():
            if " started: " in line and "admin on " in line:
                return line.split("admin on ", 1)[1].split('"', 1)[0].split()[0]
        return None

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    async def wait(self, within: float) -> int:
        assert self.process is not None
        async with asyncio.timeout(within):
            return await self.process.wait()

    async def stop(self) -> None:
        """Tear-down: SIGTERM, then SIGKILL if it does not go."""
        if self.process is None or self.process.returncode is not None:
            return
        self.terminate()
        try:
            await self.wait(30)
        except TimeoutError:
            self.kill()
            await self.process.wait()


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


async def run_cli(*args: str, within: float = 60.0, env: dict[str, str] | None = None) -> CliResult:
    """``dsmsyncd ARGS`` as a process (``env`` added to ours); this event loop keeps serving."""
    process = await asyncio.create_subprocess_exec(
        DSMSYNCD,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        async with asyncio.timeout(within):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"dsmsyncd {' '.join(args)} did not exit in {within:g}s") from None
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())
