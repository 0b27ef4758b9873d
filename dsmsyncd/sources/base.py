"""What every source gives the daemon: stable candidates, and their bytes as a ``Blob``.

A source yields a ``Candidate`` once per identity (path + size + mtime for a file),
only after the stability gate has passed it, and in arrival order (mtime, then name).
It never decides where a file goes (that is routing) and never moves it (that is the
finalizer, which the daemon pairs with each source when it builds them): sources know
nothing of datasets. The daemon talks to a source through ``Source`` alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dsmsyncd.blob import Blob
from dsmsyncd.sources.stability import StabilityGate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Never spin: the shortest wait between two looks at a source.
MIN_WAIT_S = 0.05


@dataclass(frozen=True)
class Candidate:
    """One stable file, found by one source; small enough to keep one per pending file.

    Attributes:
        source: the name of the ``[[source]]`` that found it.
        relative_path: POSIX path relative to the source root (what mappings match).
        size: bytes, as seen when the file passed the stability gate.
        mtime_ns: modification time in nanoseconds since the epoch.
        identity: changes whenever the content may have changed; the state store
            keys "seen this file" on it, so a rewritten file is a new job.
    """

    source: str
    relative_path: str
    size: int
    mtime_ns: int
    identity: str

    @property
    def mtime(self) -> datetime:
        """The modification time as an aware UTC datetime (microsecond precision)."""
        return _EPOCH + timedelta(microseconds=self.mtime_ns // 1000)


def file_identity(relative_path: str, size: int, mtime_ns: int) -> str:
    """The identity of a local file: any change of size or mtime makes a new one."""
    return f"file:{relative_path}:{size}:{mtime_ns}"


def parse_file_identity(identity: str) -> tuple[str, int, int]:
    """``file_identity``'s (relative path, size, mtime_ns); ValueError if it is not one."""
    path, size, mtime_ns = identity.removeprefix("file:").rsplit(":", 2)
    if not identity.startswith("file:") or not size.isdigit() or not mtime_ns.lstrip("-").isdigit():
        raise ValueError(f"{identity!r} is not the identity of a local file")
    return path, int(size), int(mtime_ns)


@dataclass
class Batch:
    """The candidates one look at a source found, handed over one by one until ``stop``.

    Those not handed over (the daemon stopped first) are ``unhanded``: the source forgets
    them, so that a later run of it finds them again rather than taking them as seen.
    """

    found: list[Candidate] = field(default_factory=list)
    handed: int = 0

    def hand_over(self, stop: asyncio.Event) -> Iterator[Candidate]:
        for candidate in self.found:
            if stop.is_set():
                return
            self.handed += 1  # counted before the yield: once yielded, it is delivered
            yield candidate

    @property
    def unhanded(self) -> list[Candidate]:
        return self.found[self.handed :]


async def wait_for_next_look(
    woken: asyncio.Event, next_full: float, gate: StabilityGate, *, settling: bool = True
) -> None:
    """Until ``woken`` is set, the next full look is due (loop time ``next_full``) or, with
    ``settling``, a file the stability gate is waiting for is due to be looked at again."""
    timeout = next_full - asyncio.get_running_loop().time()
    due = gate.seconds_until_due()
    if due is not None and settling:
        timeout = min(timeout, due)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(timeout, MIN_WAIT_S)):
            await woken.wait()


class SourceError(Exception):
    """A source cannot do what was asked; the message says what, where and how to fix it.

    ``retryable``: the store could not be reached or did not answer properly (refused
    connection, timeout, 5xx, throttling), so nothing in the configuration need be
    wrong; trying again later may work.
    """

    def __init__(self, what: str, *, where: str, fix: str, retryable: bool = False) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.retryable = retryable
        super().__init__(f"{where}: {what}; {fix}")


class SourceVanished(SourceError):
    """The file asked for is not there at all (deleted or moved away since it was found):
    a job can tell it from a file it may not read, and quarantine it with that reason."""


class Source(Protocol):
    """A place files arrive in.

    Its life: built from its ``[[source]]`` (nothing is sent), ``start``-ed, asked for
    ``candidates`` until stopped, read with ``open_blob`` by the jobs, ``aclose``-d.
    ``candidates`` is declared with a plain ``def``: an ``async def`` generator is
    called without ``await`` and returns an ``AsyncIterator``, which is what this says.
    """

    @property
    def name(self) -> str: ...

    async def start(self) -> None:
        """Open what the source reads through (idempotent); ``SourceError`` on bad config."""
        ...

    async def aclose(self) -> None:
        """Release it; blobs opened from the source stop working."""
        ...

    def candidates(self, stop: asyncio.Event) -> AsyncIterator[Candidate]:
        """Yield each stable file once per identity, oldest first, until ``stop`` is set."""
        ...

    def open_blob(self, relative_path: str, identity: str | None = None) -> Blob:
        """The file's bytes; ``SourceVanished`` if it is not there, ``SourceError`` if it
        cannot be read or escapes the root.

        With the job's ``identity``, the bytes of that version only: ``BlobChanged``
        if the file or object has changed since it was found.
        """
        ...

    async def check(self) -> list[str]:
        """Problems an operator must fix (root missing, not readable or writable)."""
        ...
