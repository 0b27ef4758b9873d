"""What lies under a drop folder's root, and which of it may be offered: the file system
questions a folder's looks ask (``folder.py``), for the whole tree or for one path.

A file is refused when its name or a directory above it matches an ``ignore`` pattern
(in-progress ``*.part`` files, dotfiles), when it lies under an excluded directory (the
archive and quarantine folders may live inside the root), when it is a symlink whose
target lies outside the root (a drop folder must not become a way to publish
``/etc/shadow``), or when it is not a regular file. Symlinked directories are never
descended into: one outside the root is refused, one inside leads to files the walk
reaches by their real path anyway, and following it would offer each of them twice,
under two names (and risk loops). A look at one path (after a watch event) asks the
same questions, so that it offers exactly what a walk would.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dsmsyncd.config import ignore

# (relative path, size, mtime_ns, inode: None for a symlink's) of one acceptable file.
Found = tuple[str, int, int, int | None]


@dataclass
class Tree:
    """One look's view of a source root: its real path, the real paths of its excluded
    directories, its ignore patterns; ``problems`` gathers what the look refused and an
    operator should hear of (relative path -> why)."""

    root_real: str
    excluded: tuple[str, ...]
    ignore: tuple[str, ...]
    problems: dict[str, str] = field(default_factory=dict)
    # Per look: the real path of each directory met, and whether a walk skips it.
    _real_dirs: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    _skipped_dirs: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    def walk(
        self, still_taken: Callable[[str, int], bool] | None, top: str = ""
    ) -> Iterator[Found]:
        """Every acceptable regular file under ``top`` (relative; "" for the root), but
        those ``still_taken`` says need no ``stat`` (a light scan's)."""
        stack = [(os.path.join(self.root_real, top) if top else self.root_real, top)]
        while stack:
            dir_path, rel_dir = stack.pop()
            try:
                with os.scandir(dir_path) as it:
                    entries = list(it)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.problems[rel_dir or "."] = f"cannot list the directory: {exc.strerror}"
                continue
            for entry in entries:
                rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                if ignore.matches(self.ignore, entry.name, rel):
                    continue
                inode = None
                try:
                    if entry.is_symlink():
                        if not self._symlink_to_file(entry.path, rel):
                            continue
                    elif entry.is_dir(follow_symlinks=False):
                        if not self._is_excluded(entry.path):
                            stack.append((entry.path, rel))
                        continue
                    if not entry.is_file():
                        self.problems[rel] = f"not a regular file ({_kind(entry)}): not published"
                        continue
                    if not entry.is_symlink():
                        inode = entry.inode()
                        if still_taken is not None and still_taken(rel, inode):
                            continue
                    st = entry.stat()
                except FileNotFoundError:  # vanished between listing and stat
                    continue
                except OSError as exc:
                    self.problems[rel] = f"cannot stat: {exc.strerror}"
                    continue
                yield rel, st.st_size, st.st_mtime_ns, inode

    def look_at(self, rel: str) -> Found | str | None:
        """What is at ``rel`` as a walk would see it: the file (``Found``), a directory
        to walk (its relative path, a ``str``), or None (nothing, or nothing offered)."""
        if not rel or self.ignored(rel):
            return None
        path = os.path.join(self.root_real, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                return None if self._is_excluded(path) else rel
            inode: int | None = st.st_ino
            if stat.S_ISLNK(st.st_mode):
                if not self._symlink_to_file(path, rel):
                    return None
                st, inode = os.stat(path), None
            elif self._is_excluded(path):
                return None
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.problems[rel] = f"cannot stat: {exc.strerror}"
            return None
        if not stat.S_ISREG(st.st_mode):
            self.problems[rel] = f"not a regular file ({_mode_kind(st.st_mode)}): not published"
            return None
        return rel, st.st_size, st.st_mtime_ns, inode

    def ignored(self, rel: str) -> bool:
        """Whether a walk never offers ``rel``: its name or a directory above it is
        ignored or excluded, or it lies under a symlinked directory."""
        rel_dir, name = rel.rpartition("/")[::2]
        return self._dir_skipped(rel_dir) or ignore.matches(self.ignore, name, rel)

    def stat_one(self, rel: str) -> tuple[int, int, int | None] | None:
        """(size, mtime_ns, inode: None for a symlink's) of the regular file at ``rel``,
        a file seen before (a recheck): None if it is gone or no longer acceptable."""
        path = os.path.join(self.root_real, rel)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                st = os.stat(path)
            else:
                real = os.path.join(self._real_dir(os.path.dirname(path)), os.path.basename(path))
        except OSError:
            return None
        if not inside(real, self.root_real) or self._is_excluded(real):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return st.st_size, st.st_mtime_ns, st.st_ino if real == path else None

    def _symlink_to_file(self, path: str, rel: str) -> bool:
        """Whether the symlink at ``path`` may be offered as a file (a link to a directory
        is not walked; one leaving the root is a problem to report)."""
        real = os.path.realpath(path)
        if not inside(real, self.root_real):
            self.problems[rel] = f"symlink to {real}, outside the source root: refused"
            return False
        return not os.path.isdir(real) and not self._is_excluded(real)

    def _dir_skipped(self, rel_dir: str) -> bool:
        """Whether a walk never enters the directory at ``rel_dir``: ignored (it or one
        above it), excluded, or reached through a symlinked directory."""
        if not rel_dir:
            return False
        if rel_dir not in self._skipped_dirs:
            path = os.path.join(self.root_real, rel_dir)
            self._skipped_dirs[rel_dir] = (
                ignore.folder_skips(self.ignore, rel_dir)
                or self._real_dir(path) != path
                or self._is_excluded(path)
            )
        return self._skipped_dirs[rel_dir]

    def _real_dir(self, folder: str) -> str:
        """The real path of a directory, cached for the look: resolving every component
        of every path again costs more than the stat."""
        if folder not in self._real_dirs:
            self._real_dirs[folder] = os.path.realpath(folder)
        return self._real_dirs[folder]

    def _is_excluded(self, real: str) -> bool:
        return any(inside(real, ex) for ex in self.excluded)


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _kind(entry: os.DirEntry[str]) -> str:
    """What a non-regular entry is, for the warning that names it."""
    try:
        mode = entry.stat().st_mode
    except OSError:
        return "a symlink to nothing"
    return _mode_kind(mode)


def _mode_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"
