"""Where ``dsmsyncd serve`` takes its users' passwords and tokens from.

A secret on the command line (``--user NAME:PASSWORD``) can be read by every local
user in ``/proc/PID/cmdline`` and ``ps``, for as long as the server runs. So secrets
can come from two places only their owner reads:

* a file (``--users-file``, ``--tokens-file``): keep it ``chmod 600``; a file others
  can read is warned about at start;
* an environment variable (``DSMSYNCD_SERVE_USERS``, ``DSMSYNCD_SERVE_TOKENS``):
  ``/proc/PID/environ`` is readable by the process owner (and root) only.

Both use one format, parsed by one function: one ``NAME:SECRET`` per line; blank lines
and lines starting with ``#`` are skipped; spaces around a line are ignored (an
editor's stray ones would otherwise become part of a password); the name ends at the
first ``:``, so a secret may hold any other character but a newline (a comma too,
which is why entries are separated by newlines and not commas). ``--user`` still
works, and its help says that other local users can read it.

A malformed entry is refused with where it is (file and line, or variable and line)
and what is wrong, never with the secret.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

USERS_ENV = "DSMSYNCD_SERVE_USERS"
TOKENS_ENV = "DSMSYNCD_SERVE_TOKENS"

Pair = tuple[str, str]


class CredentialsError(Exception):
    """A users or tokens file (or variable) cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Entry:
    name: str
    secret: str
    where: str  # "FILE line N", "VARIABLE line N" or "--user", for error messages


def parse(text: str, origin: str, what: str) -> list[Entry]:
    """The ``NAME:SECRET`` entries of ``text``; ``what`` is PASSWORD or TOKEN."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{origin} line {number}"
        name, sep, secret = line.partition(":")
        name = name.strip()
        if not sep:
            raise CredentialsError(f"{where}: expected NAME:{what}, found no ':'")
        if not name:
            raise CredentialsError(f"{where}: the name before ':' is empty")
        if any(c.isspace() for c in name):
            raise CredentialsError(f"{where}: the name {name!r} contains whitespace")
        if not secret:
            raise CredentialsError(f"{where}: the {what.lower()} after '{name}:' is empty")
        entries.append(Entry(name, secret, where))
    return entries


def read_file(path: Path, what: str) -> list[Entry]:
    """Entries of a users or tokens file; warns (stderr) if others may read it."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        print(
            f"dsmsyncd serve: warning: {path} holds secrets and other users may read it; "
            f"run: chmod 600 {path}",
            file=sys.stderr,
            flush=True,
        )
    return parse(text, str(path), what)


def collect(
    flags: Sequence[Pair],
    file: Path | None,
    env: Mapping[str, str],
    variable: str,
    what: str,
    flag: str,
) -> list[Entry]:
    """One kind of credentials from all three places: the file, the variable, the flags."""
    entries = read_file(file, what) if file is not None else []
    if env.get(variable, "").strip():
        entries += parse(env[variable], variable, what)
    entries += [Entry(name, secret, flag) for name, secret in flags]
    return entries


def serve_credentials(
    users: Sequence[Pair],
    users_file: Path | None,
    tokens: Sequence[Pair],
    tokens_file: Path | None,
    env: Mapping[str, str] | None = None,
) -> tuple[list[Pair], list[Pair]]:
    """(users, tokens) for ``ServeOptions``; a user given twice is refused.

    A name with two passwords would leave the server's choice of password to the order
    of arguments, so it is an error that names both places. A user may have several
    tokens.
    """
    environ = os.environ if env is None else env
    user_entries = collect(users, users_file, environ, USERS_ENV, "PASSWORD", "--user")
    seen: dict[str, str] = {}
    for entry in user_entries:
        if entry.name in seen:
            raise CredentialsError(
                f"user {entry.name!r} is given twice ({seen[entry.name]} and {entry.where}); "
                "keep one"
            )
        seen[entry.name] = entry.where
    token_entries = collect(tokens, tokens_file, environ, TOKENS_ENV, "TOKEN", "--token")
    return (
        [(e.name, e.secret) for e in user_entries],
        [(e.name, e.secret) for e in token_entries],
    )
