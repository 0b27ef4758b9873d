"""One daemon per state file: an exclusive ``flock`` on ``<state>.lock``, held while open.

Two daemons on one SQLite state file would each resume the other's live jobs, and
discard or re-apply the revisions they have open. SQLite's own locks only guard single
transactions, so the daemon's store takes this lock before it touches the database and
holds it until it closes. ``flock`` belongs to the open file, so the kernel releases it
when the process dies however it dies (kill -9 included): a stale lock cannot outlive
its holder, and the file left behind is harmless. The holder writes its pid into the
file so that a refused daemon can say who holds it.

Read-only users of the store (``status``) do not take the lock. It is local to one
machine: ``flock`` on a network file system is not reliable, and several machines
share a PostgreSQL store instead (DESIGN.md, Scaling).
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from dsmsyncd.state.store import StateStoreError


class StateLocked(StateStoreError):
    """Another live process holds the state file's lock."""

    def __init__(self, database: str, lock_path: str, holder: int | str | None) -> None:
        # An int is a local pid; a str describes a holder elsewhere (PostgreSQL's view).
        who = f"pid {holder}" if isinstance(holder, int) else holder
        who = who or "a process whose pid is not recorded"
        super().__init__(
            f"state database {database} is in use by another dsmsyncd ({who}, lock "
            f"{lock_path}): stop that daemon first, or give this one its own [state] url"
        )
        self.database = database
        self.lock_path = lock_path
        self.holder = holder


class StateFileLock:
    """The lock of one state database; ``acquire`` never waits, ``release`` is idempotent."""

    def __init__(self, database: str) -> None:
        self.database = database
        # The file itself, however it is reached (a symlink, another spelling of its
        # path): two daemons must meet on one lock for one database.
        self.path = f"{os.path.realpath(database)}.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``StateLocked`` naming the holder's pid."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StateLocked(self.database, self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Closing the descriptor releases the lock; the file stays (removing it would race)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None
