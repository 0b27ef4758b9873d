"""A source's ``ignore`` patterns: the one rule for which names discovery never offers.

A pattern is a shell glob (``fnmatch``, case-sensitive) tried against an entry's name
and against its path relative to the source root (``*`` crosses ``/`` there). A
folder walk skips a directory whose name or relative path matches, and everything
under it; a bucket listing skips an object whose name or relative key matches. The
config check asks the same questions of archive and quarantine folders that lie
inside a source (``folder_skips``, ``bucket_skips``), so that it flags exactly the
folders discovery would not skip.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import PurePosixPath


def matches(patterns: Sequence[str], name: str, relative: str) -> bool:
    """Whether an entry named ``name`` at ``relative`` (POSIX, from the root) is ignored."""
    return any(
        fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(relative, pattern)
        for pattern in patterns
    )


def folder_skips(patterns: Sequence[str], relative_dir: str) -> bool:
    """Whether a folder walk skips the directory at ``relative_dir`` (or one above it)."""
    parts = PurePosixPath(relative_dir).parts
    return any(
        matches(patterns, parts[depth], "/".join(parts[: depth + 1])) for depth in range(len(parts))
    )


def bucket_skips(patterns: Sequence[str], relative_prefix: str) -> bool:
    """Whether a bucket listing skips every key under ``relative_prefix`` (ends in ``/``).

    Object names vary, so only the relative key can be relied on: a pattern ending in
    ``*`` that matches the prefix matches every key that extends it.
    """
    return any(
        pattern.endswith("*") and fnmatch.fnmatchcase(relative_prefix, pattern)
        for pattern in patterns
    )
