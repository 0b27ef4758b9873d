"""Identifiers the server mints: dataset and user "fourfours", request ids."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# Socrata fourfours are two groups of four lower-case characters; leaving out the
# look-alikes (0/o, 1/l) keeps ids readable when people type them from a screen.
_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyz"


def new_fourfour() -> str:
    left = "".join(secrets.choice(_ALPHABET) for _ in range(4))
    right = "".join(secrets.choice(_ALPHABET) for _ in range(4))
    return f"{left}-{right}"


def unique_fourfour(taken: Callable[[str], bool]) -> str:
    """A fresh fourfour that ``taken`` says is free (32**8 ids make retries rare)."""
    while True:
        candidate = new_fourfour()
        if not taken(candidate):
            return candidate


def new_request_id() -> str:
    """32 lower-case hex characters, the shape the SDK itself sends."""
    return secrets.token_hex(16)
