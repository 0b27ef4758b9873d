"""``dsmsyncd serve`` as a real process, started the way a user starts it.

Readiness is the server's own "listening on" line (printed once the socket is bound);
later stdout lines (a test pause point's "paused at …") are read with
:meth:`ServeProcess.line`, which first returns any "paused at" line that work resumed
at start printed before the readiness line. No step waits on time: a timeout only guards a hang.
Credentials go in a users file, never on the command line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

GUARD_S = 60.0


@dataclass
class ServeProcess:
    proc: asyncio.subprocess.Process
    url: str
    log: Path
    # "paused at" lines printed before the readiness line, for ``line`` to return first.
    early: list[str] = field(default_factory=list)

    async def line(self) -> str:
        """The next stdout line (the readiness line has been read already)."""
        if self.early:
            return self.early.pop(0)
        return await self._read()

    async def _read(self) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout=GUARD_S)
        assert raw, f"server stdout ended; its stderr:\n{self.stderr()}"
        return raw.decode().rstrip("\n")

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.proc.wait(), timeout=GUARD_S)

    async def stop(self) -> int:
        """SIGTERM and the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout=GUARD_S)

    def stderr(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def launcher(server_path: str | None = None) -> list[str]:
    """The command that runs ``dsmsyncd`` (its arguments follow), from ``server_path``
    if given (another checkout, for before/after benches): the editable install's import
    hook, which would win over ``PYTHONPATH``, is taken out of that process first."""
    if server_path is None:
        return [sys.executable, "-m", "dsmsyncd.cli.main"]
    code = (
        "import runpy, sys; "
        "sys.meta_path[:] = [f for f in sys.meta_path "
        "if getattr(f, '__name__', '') != '_EditableFinder']; "
        f"sys.path.insert(0, {server_path!r}); sys.argv = ['dsmsyncd', *sys.argv[1:]]; "
        "runpy.run_module('dsmsyncd.cli.main', run_name='__main__')"
    )
    return [sys.executable, "-c", code]


def write_users(path: Path, *users: tuple[str, str]) -> Path:
    """A users file (mode 600) with one NAME:PASSWORD line per user."""
    path.touch(mode=0o600)
    path.write_text("".join(f"{name}:{password}\n" for name, password in users))
    return path


@asynccontextmanager
async def serve_process(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    server_path: str | None = None,
) -> AsyncIterator[ServeProcess]:
    """``python -m dsmsyncd.cli.main serve`` on a free loopback port (from ``server_path``
    if given, see :func:`launcher`); killed on exit if alive."""
    log = data_dir.parent / f"{data_dir.name}-serve.log"
    command = [*launcher(server_path), "serve", "--listen", "127.0.0.1:0"]
    command += ["--data-dir", str(data_dir), *args]
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    served = ServeProcess(proc, "", log)
    try:
        line = await served.line()
        while line.startswith("dsmsyncd serve: paused at "):
            # Work resumed at start (a cut apply or parse) runs while the server starts,
            # so its pause point may print before the readiness line does.
            served.early.append(line)
            line = await served._read()
        assert line.startswith("dsmsyncd serve: listening on "), line + served.stderr()
        served.url = line.rsplit(" ", 1)[1]
        yield served
    finally:
        if proc.returncode is None:
            await served.kill()


@asynccontextmanager
async def serve_with_users(
    root: Path, *users: tuple[str, str], server_path: str | None = None
) -> AsyncIterator[ServeProcess]:
    """:func:`serve_process` on ``root/served`` with ``users`` in a users file beside it
    (how the benches start a server; ``server_path`` as in :func:`launcher`)."""
    users_file = write_users(root / "users", *users)
    async with serve_process(
        root / "served", "--users-file", str(users_file), server_path=server_path
    ) as served:
        yield served
