"""A local drop folder: files present at start, filesystem events, and a periodic rescan.

Events (watchfiles, ``watch.py``) say when to look and where: a look after events
examines only the paths they name (a new directory: its subtree; a path gone: it is
forgotten), so that each archived file costs a few ``stat`` calls, not a scan of every
file waiting. The full scan stays at start, on every ``poll_interval`` tick, and
whenever the watch cannot be trusted to have named every change (re-armed after a
failure, a flood of events; ``WatchNews.rescan``): a lost event costs latency, never a
file. Files still settling are re-checked on their own when they are due, so a file
becomes a candidate ``min_age`` after it stops changing even if no further event arrives.

What a look refuses (ignored names, excluded directories, symlinks leaving the root,
non-regular files) is decided in ``folder_walk.py``, the same way for a scan and for a
path named by an event. Each refusal that deserves an operator's attention is logged
once, for as long as it lasts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import stat
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from pathlib import Path

from dsmsyncd.blob import BlobChanged, LocalFileBlob
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
from dsmsyncd.sources.folder_walk import Tree, inside
from dsmsyncd.sources.stability import Clock, StabilityGate
from dsmsyncd.sources.watch import WatchNews, watch

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
        tree = self._tree()
        if tree is None:
            return []
        ready = self._observe(tree.walk(self._gate.still_taken if light else None))
        self._gate.sweep()
        self._report(tree.problems, complete=True)
        return _in_arrival_order(ready)

    def look_at(self, relative_paths: Iterable[str]) -> list[Candidate]:
        """Look at the paths watch events named (relative to the root) and nothing else:
        a file is observed, a directory's subtree walked, a path gone forgotten (with
        whatever was known under it). Returns the files that just became stable."""
        tree = self._tree()
        if tree is None:
            return []
        ready: list[Candidate] = []
        gone_dirs: list[str] = []  # a directory removed or moved away takes its files along
        for rel in sorted(set(relative_paths)):
            found = tree.look_at(rel)
            if isinstance(found, str):
                ready += self._observe(tree.walk(None, top=found))
            elif found is not None:
                ready += self._observe([found])
            elif rel in self._gate:
                self._gate.forget(rel)  # gone, or no longer acceptable: as a sweep would
            elif not tree.ignored(rel) and not os.path.lexists(os.path.join(tree.root_real, rel)):
                gone_dirs.append(rel)
        if gone_dirs:
            self._gate.forget_under(gone_dirs)
        self._report(tree.problems, complete=False)
        return _in_arrival_order(ready)

    def recheck_pending(self) -> list[Candidate]:
        """Look again at the files still settling only (cheaper than a full scan)."""
        tree = self._tree()
        if tree is None:
            return []
        ready: list[Candidate] = []
        for rel in self._gate.pending():
            found = tree.stat_one(rel)
            if found is None:
                self._gate.forget(rel)
            elif self._gate.observe(rel, *found):
                ready.append(self._candidate(rel, found[0], found[1]))
        return _in_arrival_order(ready)

    def _observe(self, found: Iterable[tuple[str, int, int, int | None]]) -> list[Candidate]:
        """The gate told what a look saw; the candidates that just became stable."""
        return [
            self._candidate(rel, size, mtime_ns)
            for rel, size, mtime_ns, inode in found
            if self._gate.observe(rel, size, mtime_ns, inode)
        ]

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

    def _tree(self) -> Tree | None:
        """The root as one look sees it (None while the root is missing)."""
        root_real = self._root_real()
        if root_real is None:
            return None
        excluded = tuple(os.path.realpath(path) for path in self.exclude_dirs)
        return Tree(root_real, excluded, self._ignore)

    def _report(self, problems: dict[str, str], *, complete: bool) -> None:
        """Log each problem the first look it appears; a ``complete`` look (a full scan)
        also forgets those that went away."""
        for rel, message in problems.items():
            if rel not in self._warned:
                logger.warning("source %s: %s: %s", self.name, rel, message)
        self._warned = set(problems) if complete else self._warned | set(problems)

    # -- async discovery -----------------------------------------------------------------

    async def candidates(self, stop: asyncio.Event) -> AsyncGenerator[Candidate, None]:
        """Initial scan, then a look at each event batch's paths, a recheck of the files
        settling when they are due, and a full scan every poll tick, until ``stop``."""
        wake = asyncio.Event()
        halt = asyncio.Event()  # ours alone: watchfiles sets it if its task is cancelled
        news = WatchNews()
        relay = asyncio.create_task(_relay(stop, halt, wake), name=f"stop-{self.name}")
        watcher = asyncio.create_task(
            watch(self.name, self.root, self._poll_s, halt, wake, news),
            name=f"watch-{self.name}",
        )
        loop = asyncio.get_running_loop()
        batch = Batch()
        try:
            look: Callable[[], list[Candidate]] = self.scan
            next_full, light_in_a_row = loop.time() + self._poll_s, 0
            while not stop.is_set():
                batch = Batch(await asyncio.to_thread(look))
                for candidate in batch.hand_over(stop):
                    yield candidate
                await wait_for_next_look(wake, next_full, self._gate)
                wake.clear()
                paths, rescan = news.take()
                if rescan or loop.time() >= next_full:
                    # The rescan every poll_interval is light while events arrive (the
                    # watch is armed) and none is waiting: the listing finds new and
                    # replaced files; every LIGHT_RESCANS + 1th one stats every file, for
                    # an event lost on a rewrite in place.
                    light = not (rescan or paths) and news.armed
                    light = light and loop.time() >= next_full and light_in_a_row < LIGHT_RESCANS
                    look = functools.partial(self.scan, light=light)
                    next_full = loop.time() + self._poll_s
                    light_in_a_row = light_in_a_row + 1 if light else 0
                elif paths:
                    look = functools.partial(self.look_at, paths)
                else:
                    look = self.recheck_pending
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
        if Path(relative_path).is_absolute() or not inside(real, root_real) or real == root_real:
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


def _in_arrival_order(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (c.mtime_ns, c.relative_path))
