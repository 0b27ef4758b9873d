"""A throwaway PostgreSQL server for one test run, from the binaries this machine has.

Why: the PostgreSQL state store is part of the contract and its tests never skip, but a
machine (a laptop, a fresh container) may have PostgreSQL's binaries without a server
running. Rather than fail there, the run starts its own server: ``initdb`` into a new
directory under the temp dir, trust authentication for user ``postgres``, listening
only on 127.0.0.1 on a free port with its socket in that directory, ``fsync`` off
(nothing in it needs to survive a crash). ``stop`` ends that server (and only it) and
removes the directory.

``initdb`` and ``pg_ctl`` refuse to run as root, so as root both run as an
unprivileged user (``postgres`` if it exists, else ``nobody``) that owns the directory.
Where no binaries are found or no such user exists, ``ThrowawayImpossible`` says why;
``tests/support/postgres_source.py`` turns that into the how-to message.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

VERSIONS_ROOT = Path("/usr/lib/postgresql")
UNPRIVILEGED_USERS = ("postgres", "nobody")
START_TIMEOUT_S = 60
PORT_ATTEMPTS = 3
_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class ThrowawayImpossible(RuntimeError):
    """No throwaway server can be started here; the message says why."""


@dataclass(frozen=True)
class ThrowawayPostgres:
    """A running throwaway server: ``url`` reaches it as the trusted superuser ``postgres``."""

    url: str
    directory: Path
    bin_dir: Path
    run_as: dict[str, Any]

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def stop(self) -> None:
        """Stop the server (``pg_ctl`` waits until it has exited) and remove its directory."""
        if (self.data_dir / "postmaster.pid").exists():
            _pg_ctl(self, "stop", "-w", "-m", "fast", *_timeout())
        shutil.rmtree(self.directory, ignore_errors=True)


def bin_dir_candidates(path: str | None = None, versions_root: Path = VERSIONS_ROOT) -> list[Path]:
    """Where to look for the binaries, in order: ``PATH`` (``path`` if given), then each
    ``versions_root/<version>/bin``, newest version first (Debian does not put them on PATH)."""
    search_path = os.environ.get("PATH", "") if path is None else path
    on_path = [Path(entry) for entry in search_path.split(os.pathsep) if entry]
    versions = sorted(versions_root.glob("*/bin"), key=_version_key, reverse=True)
    return on_path + versions


def find_bin_dir(candidates: Sequence[Path]) -> Path:
    """The first directory holding both ``initdb`` and ``pg_ctl`` (``pg_ctl`` finds ``postgres``
    beside its own resolved path)."""
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return directory
    searched = ", ".join(str(d) for d in candidates) or "nothing"
    raise ThrowawayImpossible(f"no directory with initdb and pg_ctl (searched: {searched})")


def start_throwaway(candidates: Sequence[Path] | None = None) -> ThrowawayPostgres:
    """``initdb`` a new cluster and start it on a free port; returns once it accepts
    connections (``pg_ctl start -w`` waits for that itself)."""
    bin_dir = find_bin_dir(bin_dir_candidates() if candidates is None else candidates)
    run_as = _unprivileged()
    directory = Path(tempfile.mkdtemp(prefix="dsmsyncd-test-pg-"))
    if run_as:
        os.chown(directory, run_as["user"], run_as["group"])
    server = ThrowawayPostgres("", directory, bin_dir, run_as)  # no URL until it listens
    try:
        _initdb(server)
        port = _start_on_free_port(server)
        return replace(server, url=f"postgresql://postgres@127.0.0.1:{port}/postgres")
    except BaseException:
        server.stop()
        raise


def _initdb(server: ThrowawayPostgres) -> None:
    args = ["-D", str(server.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    _run(server, "initdb", *args, "--no-locale", "--no-sync")
    settings = _SETTINGS.format(socket_dir=server.directory)
    with (server.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(settings)


def _start_on_free_port(server: ThrowawayPostgres) -> int:
    """Start on a port the kernel says is free (returned); another process may take it
    first, so a bind failure is retried on a new port a few times."""
    problems: list[str] = []
    log = server.directory / "server.log"
    for _ in range(PORT_ATTEMPTS):
        port = free_port()
        try:
            _pg_ctl(server, "start", "-w", *_timeout(), "-l", str(log), "-o", f"-p {port}")
        except ThrowawayImpossible as exc:
            problems.append(f"{exc}; server log: {_tail(log)}")
            continue
        return port
    raise ThrowawayImpossible("pg_ctl start failed: " + " | ".join(problems))


def _pg_ctl(server: ThrowawayPostgres, *args: str) -> None:
    _run(server, "pg_ctl", "-D", str(server.data_dir), *args)


def _timeout() -> tuple[str, str]:
    return ("-t", str(START_TIMEOUT_S))


def _run(server: ThrowawayPostgres, program: str, *args: str) -> None:
    """Run one of the binaries as the unprivileged user, in the server's directory (the
    caller's may not be readable by that user), without the caller's PG* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", HOME=str(server.directory))
    done = subprocess.run(
        [str(server.bin_dir / program), *args],
        cwd=server.directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        **server.run_as,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise ThrowawayImpossible(f"{program} {args[0]} failed ({done.returncode}): {said}")


def _unprivileged() -> dict[str, Any]:
    """``subprocess`` arguments that drop root for the binaries; none when not root."""
    if os.geteuid() != 0:
        return {}
    for name in UNPRIVILEGED_USERS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    users = " nor ".join(UNPRIVILEGED_USERS)
    raise ThrowawayImpossible(f"initdb refuses to run as root, and neither user {users} exists")


def _tail(log: Path, lines: int = 5) -> str:
    try:
        return " / ".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))
