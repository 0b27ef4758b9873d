"""Which ``[state] url`` values name a store this dsmsyncd can open: one rule, two users.

The config validates ``[state] url`` with ``check_state_url`` and ``open_state_store``
opens with the same parsing, so ``check-config`` refuses exactly what ``run`` could
not open. The rule lives here, at the base, because the config (which every layer
may use) validates with it; the stores build on it. Messages never quote the URL:
a PostgreSQL URL carries a password.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

MEMORY = ":memory:"
"""SQLite's name for a database that lives in memory only (``sqlite:///:memory:``)."""


def check_state_url(url: str) -> None:
    """Raise ValueError (what is accepted, with an example) unless ``url`` can be opened."""
    scheme = url.partition(":")[0].lower()
    if scheme in ("postgresql", "postgres"):
        raise ValueError(
            "PostgreSQL state stores land with the multi-replica work and are not available "
            "yet; use sqlite:///ABSOLUTE/PATH (e.g. sqlite:///var/lib/dsmsyncd/state.db)"
        )
    sqlite_path_from_url(url)


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///var/lib/x.db`` → ``/var/lib/x.db`` (``sqlite:////var/lib/x.db`` too)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError("expected sqlite:///ABSOLUTE/PATH or sqlite:///:memory:")
    bad = parts.netloc or parts.query or parts.fragment or not parts.path.strip("/")
    if bad or not parts.path.startswith("/"):
        raise ValueError(
            "expected sqlite:///ABSOLUTE/PATH (three slashes, no host, no query), "
            "e.g. sqlite:///var/lib/dsmsyncd/state.db"
        )
    path = unquote(parts.path)
    if path == f"/{MEMORY}":
        return MEMORY
    return "/" + path.lstrip("/")
