"""The stability gate: a file is taken only once it has stopped changing for ``min_age``.

Writers copy files in pieces, so a file seen now may still be growing. The gate
remembers, per path, the (size, mtime) pair last seen and *when it was first seen*
by an injectable monotonic clock. Age is measured with that clock and never from the
file's mtime, which can be in the future (clock skew on a network share) or far in
the past (``cp -p``, ``rsync -t``) and says nothing about whether writing has ended.

It is pure (no I/O, no threads) so that tests drive time explicitly, and bounded:
one small record per file present in the folder, dropped by ``sweep`` once a full
scan no longer sees the file, or by ``forget`` when a look after an event finds it gone
(invariant 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator

Clock = Callable[[], float]


class _Entry:
    """What the gate keeps per path: the pair, since when, and whether it was yielded."""

    __slots__ = ("first_seen", "inode", "mtime_ns", "size", "swept", "yielded")

    def __init__(
        self, size: int, mtime_ns: int, first_seen: float, swept: int, inode: int | None
    ) -> None:
        self.size = size
        self.mtime_ns = mtime_ns
        self.first_seen = first_seen
        self.yielded = False
        self.swept = swept
        self.inode = inode


class StabilityGate:
    """Decides when a path's (size, mtime) has held still long enough to be taken.

    ``observe`` returns True exactly once per identity (path, size, mtime): the first
    time the pair has been seen unchanged for at least ``min_age_s``. A change resets
    the wait; a yielded pair stays remembered so that rescans do not yield it again,
    while a rewrite (new size or mtime) is a new identity and is yielded again.
    """

    def __init__(self, min_age_s: float, clock: Clock = time.monotonic) -> None:
        if min_age_s < 0:
            raise ValueError(f"min_age must be >= 0 seconds, found {min_age_s}")
        self.min_age_s = min_age_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._sweep = 0

    def observe(
        self, relative_path: str, size: int, mtime_ns: int, inode: int | None = None
    ) -> bool:
        """Record what a scan saw; True when this identity has just become stable."""
        now = self._clock()
        entry = self._entries.get(relative_path)
        if entry is None or entry.size != size or entry.mtime_ns != mtime_ns:
            entry = _Entry(size, mtime_ns, now, self._sweep, inode)
            self._entries[relative_path] = entry
        else:
            entry.swept = self._sweep
            entry.inode = inode
        if entry.yielded or now - entry.first_seen < self.min_age_s:
            return False
        entry.yielded = True
        return True

    def still_taken(self, relative_path: str, inode: int) -> bool:
        """Whether the path is a file already taken, still the same file (its inode, as
        a directory listing gives it for free): then a light scan marks it seen without
        a ``stat``. A file replaced by a rename has a new inode and is looked at again;
        one rewritten in place is seen by its watch event, or by the next full scan.
        """
        entry = self._entries.get(relative_path)
        if entry is None or not entry.yielded or entry.inode != inode:
            return False
        entry.swept = self._sweep
        return True

    def forget(self, relative_path: str) -> None:
        """The file disappeared (or was handed back): drop what was known of it."""
        self._entries.pop(relative_path, None)

    def forget_under(self, folders: Collection[str]) -> None:
        """Directories disappeared: drop what was known of every file under them."""
        prefixes = tuple(folder + "/" for folder in folders)
        for path in [path for path in self._entries if path.startswith(prefixes)]:
            del self._entries[path]

    def sweep(self) -> int:
        """End a full scan: drop every path it did not observe; returns how many went.

        Call once after each complete scan of the source; paths observed during the
        scan are kept, vanished ones are forgotten so the gate never outgrows the folder.
        """
        gone = [path for path, entry in self._entries.items() if entry.swept != self._sweep]
        for path in gone:
            del self._entries[path]
        self._sweep += 1
        return len(gone)

    def pending(self) -> Iterator[str]:
        """Paths seen but not yet stable (a snapshot: safe to ``observe`` while iterating)."""
        return iter([path for path, entry in self._entries.items() if not entry.yielded])

    def seconds_until_due(self) -> float | None:
        """How long until the oldest pending pair reaches ``min_age`` (None: none pending)."""
        firsts = [entry.first_seen for entry in self._entries.values() if not entry.yielded]
        if not firsts:
            return None
        return max(0.0, min(firsts) + self.min_age_s - self._clock())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, relative_path: object) -> bool:
        return relative_path in self._entries
