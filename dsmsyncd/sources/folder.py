"""A local drop folder: files present at start, filesystem events, and a periodic rescan.

Events (watchfiles, ``watch.py``) only say *when* to look: every batch triggers a full
scan, so a lost event (network mounts, an overflowing inotify queue) costs latency,
never a file, and the ``poll_interval`` rescan is the safety net. Files still settling are
re-checked on their own when they are due, so a file becomes a candidate ``min_age``
after it stops changing even if no further event arrives.

A scan refuses what must never be uploaded: names matching an ``ignore`` pattern
(in-progress ``*.part`` files, dotfiles), anything under an excluded directory (the
archive and quarantine folders may live inside the root), symlinks whose target lies
outside the root (a drop folder must not become a way to publish ``/etc/shadow``),
and anything that is not a regular file. Each refusal that deserves an operator's
attention is logged once, for as long as it lasts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import stat
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path

from dsmsyncd.blob import BlobChanged, LocalFileBlob
from dsmsyncd.config import ignore
from dsmsyncd.config.schema import SourceConfig
from dsmsyncd.sources.base import (
    Batch,
    Candidate,
    SourceError,
    SourceVanished,
    file_identity,
    parse_file_identity,
    wait_for_next_look,
)
from dsmsyncd.sources.stability import Clock, StabilityGate
from dsmsyncd.sources.watch import WatchHealth, watch

logger = logging.getLogger("dsmsyncd.sources.folder")

# Periodic rescans in a row that stat only new, settling and replaced files (while the
# watch is armed); the next one stats every file. 9: a full stat every 10 polls.
LIGHT_RESCANS = 9


class FolderSource:
    """Yields the stable files of one ``file://`` source, oldest first.

    ``scan`` and ``recheck_pending`` are synchronous (``os.scandir``) and meant to run
    in a worker thread, one at a time; ``candidates`` does exactly that.
    """

    def __init__(
        self,
        config: SourceConfig,
        *,
        exclude_dirs: Sequence[Path] = (),
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.name = config.name
        self.root = config.path
        # Relative excluded dirs are taken relative to the root (absolute ones stay).
        self.exclude_dirs = tuple(self.root / path for path in exclude_dirs)
        self._ignore = tuple(config.ignore)
        self._poll_s = config.poll_interval
        self._gate = StabilityGate(config.min_age, clock)
        self._warned: set[str] = set()
        self._root_missing = False

    # -- lifecycle: a folder holds nothing open -----------------------------------------

    async def start(self) -> None:
        """Nothing to open: a folder is read with the file system's calls."""

    async def aclose(self) -> None:
        """Nothing to release; discovery stops with its ``stop`` event."""

    # -- scanning (synchronous; run in a thread) ---------------------------------------

    def scan(self, *, light: bool = False) -> list[Candidate]:
        """Walk the whole folder; return the files that just became stable, oldest first.

        ``light``: a file already taken whose inode is unchanged is not ``stat``-ed (see
        ``StabilityGate.still_taken``); new, settling and replaced files are, as always.
        """
        root_real = self._root_real()
        if root_real is None:
            return []
        excluded = self._excluded_real()
        problems: dict[str, str] = {}
        ready: list[Candidate] = []
        for rel, size, mtime_ns, inode in self._walk(root_real, excluded, problems, light):
            if self._gate.observe(rel, size, mtime_ns, inode):
                ready.append(self._candidate(rel, size, mtime_ns))
        self._gate.sweep()
        self._report(problems)
        return _in_arrival_order(ready)

    def recheck_pending(self) -> list[Candidate]:
        """Look again at the files still settling only (cheaper than a full scan)."""
        root_real = self._root_real()
        if root_real is None:
            return []
        excluded = self._excluded_real()
        ready: list[Candidate] = []
        real_dirs: dict[str, str] = {}
        for rel in self._gate.pending():
            found = self._stat_one(root_real, excluded, rel, real_dirs)
            if found is None:
                self._gate.forget(rel)
            elif self._gate.observe(rel, *found):
                ready.append(self._candidate(rel, found[0], found[1]))
        return _in_arrival_order(ready)

    @property
    def pending_count(self) -> int:
        """Files seen and remembered (settling, or yielded and still present)."""
        return len(self._gate)

    def _candidate(self, rel: str, size: int, mtime_ns: int) -> Candidate:
        return Candidate(self.name, rel, size, mtime_ns, file_identity(rel, size, mtime_ns))

    def _root_real(self) -> str | None:
        real = os.path.realpath(self.root)
        if os.path.isdir(real):
            if self._root_missing:
                logger.info("source %s: root %s is back", self.name, self.root)
                self._root_missing = False
            return real
        if not self._root_missing:
            logger.warning(
                "source %s: root %s is missing or not a directory; will keep looking "
                "(create it, mount it, or fix url in [[source]])",
                self.name,
                self.root,
            )
            self._root_missing = True
        return None

    def _excluded_real(self) -> tuple[str, ...]:
        return tuple(os.path.realpath(path) for path in self.exclude_dirs)

    def _ignored(self, name: str, rel: str) -> bool:
        return ignore.matches(self._ignore, name, rel)

    def _walk(
        self, root_real: str, excluded: tuple[str, ...], problems: dict[str, str], light: bool
    ) -> Iterator[tuple[str, int, int, int | None]]:
        """(relative path, size, mtime_ns, inode) of every acceptable regular file under
        the root, but those a ``light`` walk finds still taken (inode None: a symlink's).

        Symlinked directories are never descended into: one outside the root is refused,
        one inside leads to files the walk reaches by their real path anyway, and
        following it would offer each of them twice, under two names (and risk loops).
        """
        stack: list[tuple[str, str]] = [(root_real, "")]
        while stack:
            dir_path, rel_dir = stack.pop()
            try:
                with os.scandir(dir_path) as it:
                    entries = list(it)
            except FileNotFoundError:
                continue
            except OSError as exc:
                problems[rel_dir or "."] = f"cannot list the directory: {exc.strerror}"
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if self._ignored(entry.name, rel):
                    continue
                inode = None
                try:
                    if entry.is_symlink():
                        real = os.path.realpath(entry.path)
                        if not _inside(real, root_real):
                            problems[rel] = f"symlink to {real}, outside the source root: refused"
                            continue
                        if entry.is_dir() or any(_inside(real, ex) for ex in excluded):
                            continue
                    elif entry.is_dir(follow_symlinks=False):
                        if not any(_inside(entry.path, ex) for ex in excluded):
                            stack.append((entry.path, rel))
                        continue
                    if not entry.is_file():
                        problems[rel] = f"not a regular file ({_kind(entry)}): not published"
                        continue
                    if not entry.is_symlink():
                        inode = entry.inode()
                        if light and self._gate.still_taken(rel, inode):
                            continue
                    st = entry.stat()
                except FileNotFoundError:  # vanished between listing and stat
                    continue
                except OSError as exc:
                    problems[rel] = f"cannot stat: {exc.strerror}"
                    continue
                yield rel, st.st_size, st.st_mtime_ns, inode

    def _stat_one(
        self, root_real: str, excluded: tuple[str, ...], rel: str, real_dirs: dict[str, str]
    ) -> tuple[int, int, int | None] | None:
        """(size, mtime_ns, inode: None for a symlink's) of the regular file at ``rel``.

        ``real_dirs`` caches the real path of each directory for one recheck: resolving
        every component of every settling file's path again costs more than the stat.
        """
        path = os.path.join(root_real, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                st = os.stat(path)
            else:
                folder, name = os.path.split(path)
                if folder not in real_dirs:
                    real_dirs[folder] = os.path.realpath(folder)
                real = os.path.join(real_dirs[folder], name)
        except OSError:
            return None
        if not _inside(real, root_real) or any(_inside(real, ex) for ex in excluded):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino if real == path else None

    def _report(self, problems: dict[str, str]) -> None:
        """Log each problem the first scan it appears; forget those that went away."""
        for rel, message in problems.items():
            if rel not in self._warned:
                logger.warning("source %s: %s: %s", self.name, rel, message)
        self._warned = set(problems)

    # -- async discovery -----------------------------------------------------------------

    async def candidates(self, stop: asyncio.Event) -> AsyncGenerator[Candidate, None]:
        """Initial scan, then rescan on each event batch or poll tick until ``stop``."""
        wake = asyncio.Event()
        halt = asyncio.Event()  # ours alone: watchfiles sets it if its task is cancelled
        health = WatchHealth()
        relay = asyncio.create_task(_relay(stop, halt, wake), name=f"stop-{self.name}")
        watcher = asyncio.create_task(
            watch(self.name, self.root, self._poll_s, halt, wake, health),
            name=f"watch-{self.name}",
        )
        loop = asyncio.get_running_loop()
        batch = Batch()
        try:
            full, light, next_full, light_in_a_row = True, False, loop.time(), 0
            while not stop.is_set():
                look = functools.partial(self.scan, light=light) if full else self.recheck_pending
                batch = Batch(await asyncio.to_thread(look))
                if full:
                    next_full = loop.time() + self._poll_s
                    light_in_a_row = light_in_a_row + 1 if light else 0
                for candidate in batch.hand_over(stop):
                    yield candidate
                await wait_for_next_look(wake, next_full, self._gate)
                full = wake.is_set() or loop.time() >= next_full
                # The rescan every poll_interval is light while events arrive (the watch
                # is armed): the listing finds new and replaced files; every
                # LIGHT_RESCANS + 1th one stats every file, for an event lost on a rewrite.
                light = not wake.is_set() and health.armed and light_in_a_row < LIGHT_RESCANS
                wake.clear()
                if watcher.done() and not halt.is_set():
                    watcher.result()  # the watch died: raise its error for the daemon to see
        finally:
            for candidate in batch.unhanded:
                self._gate.forget(candidate.relative_path)
            halt.set()
            relay.cancel()
            await asyncio.gather(relay, watcher, return_exceptions=True)

    # -- reading and health ----------------------------------------------------------------

    def open_blob(self, relative_path: str, identity: str | None = None) -> LocalFileBlob:
        """The file's bytes by range; refuses a path that leaves the root or is gone
        (``SourceVanished`` when nothing at all is at the path any more).

        Pass the job's ``identity``: a file whose size or mtime moved since it was found
        raises ``BlobChanged`` rather than handing the job bytes it was not found with
        (a file found empty and filled since); the new version is a job of its own.
        """
        try:
            return self._open_blob(relative_path, identity)
        except SourceError as exc:
            if os.path.lexists(self.root / relative_path):
                raise
            raise SourceVanished(exc.what, where=exc.where, fix=exc.fix) from None

    def _open_blob(self, relative_path: str, identity: str | None) -> LocalFileBlob:
        where = f"source {self.name}: {relative_path!r}"
        root_real = os.path.realpath(self.root)
        path = self.root / relative_path
        real = os.path.realpath(path)
        if Path(relative_path).is_absolute() or not _inside(real, root_real) or real == root_real:
            raise SourceError(
                f"resolves to {real}, outside the source root {self.root}",
                where=where,
                fix="only files (or symlinks to files) inside the root are published",
            )
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise SourceError(
                "the file vanished before it could be read",
                where=where,
                fix="leave files in the drop folder until dsmsyncd archives them",
            ) from None
        except OSError as exc:
            raise SourceError(
                f"cannot read the file: {exc.strerror}",
                where=where,
                fix="make it readable by the dsmsyncd user",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise SourceError(
                "not a regular file", where=where, fix="only regular files are published"
            )
        if identity is not None:
            _check_identity(path, identity, st, where)
        return LocalFileBlob(path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)

    async def check(self) -> list[str]:
        """Problems with the root an operator must fix before files can flow."""
        return await asyncio.to_thread(self._check)

    def _check(self) -> list[str]:
        where = f"source {self.name}: {self.root}"
        if not self.root.exists():
            return [f"{where} does not exist; create it or fix url in [[source]]"]
        if not self.root.is_dir():
            return [f"{where} is not a directory; point url at the drop folder"]
        problems = []
        if not os.access(self.root, os.R_OK | os.X_OK):
            problems.append(f"{where} is not readable; grant the dsmsyncd user read access")
        if not os.access(self.root, os.W_OK):
            problems.append(
                f"{where} is not writable; dsmsyncd moves published files out of it "
                "(grant write access)"
            )
        return problems


async def _relay(stop: asyncio.Event, halt: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    halt.set()
    wake.set()


def _check_identity(path: Path, identity: str, st: os.stat_result, where: str) -> None:
    try:
        _, size, mtime_ns = parse_file_identity(identity)
    except ValueError as exc:
        raise SourceError(str(exc), where=where, fix="this job was not found by a folder") from None
    if (size, mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise BlobChanged(
            str(path),
            f"changed since it was found (size {size} -> {st.st_size}, "
            f"mtime_ns {mtime_ns} -> {st.st_mtime_ns})",
        )


def _kind(entry: os.DirEntry[str]) -> str:
    """What a non-regular entry is, for the warning that names it."""
    try:
        mode = entry.stat().st_mode
    except OSError:
        return "a symlink to nothing"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _in_arrival_order(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.mtime_ns, c.relative_path))
