"""Which ``[state] url`` values name a store this dsmsyncd can open: one rule, two users.

The config validates ``[state] url`` with ``check_state_url`` and ``open_state_store``
opens with the same parsing, so ``check-config`` refuses exactly what ``run`` could
not open. The rule lives here, at the base, because the config (which every layer
may use) validates with it; the stores build on it. Messages never quote the URL:
a PostgreSQL URL carries a password.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

MEMORY = ":memory:"
"""SQLite's name for a database that lives in memory only (``sqlite:///:memory:``)."""

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})

# The libpq connection parameters asyncpg honours in a URL's query. Anything else
# would reach the server as a run-time setting (asyncpg's rule) and fail only at
# connect time, so it is refused here, where check-config sees it.
POSTGRES_QUERY_KEYS = frozenset(
    {
        *("host", "port", "dbname", "user", "password", "passfile", "application_name"),
        *("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslcrl"),
        *("ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs"),
    }
)
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def is_postgres_url(url: str) -> bool:
    return url.partition(":")[0].lower() in POSTGRES_SCHEMES


def check_state_url(url: str) -> None:
    """Raise ValueError (what is accepted, with an example) unless ``url`` can be opened."""
    if is_postgres_url(url):
        check_postgres_url(url)
    else:
        sqlite_path_from_url(url)


def check_postgres_url(url: str) -> None:
    """``postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…]``, libpq's spelling."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ValueError(
            "not a PostgreSQL URL: expected postgresql://USER@HOST:PORT/DATABASE "
            "(the port a number)"
        ) from None
    if parts.fragment:
        raise ValueError("a PostgreSQL URL has no #fragment")
    query = parse_qsl(parts.query, keep_blank_values=True)
    unknown = sorted({key for key, _ in query} - POSTGRES_QUERY_KEYS)
    if unknown:
        raise ValueError(
            f"unknown PostgreSQL connection parameter(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(sorted(POSTGRES_QUERY_KEYS))}"
        )
    for key, value in query:
        if key == "sslmode" and value not in SSLMODES:
            raise ValueError(f"sslmode must be one of {', '.join(SSLMODES)}, found {value!r}")


def url_has_password(url: str) -> bool:
    """Whether the URL itself carries a password (in its userinfo or its query)."""
    parts = urlsplit(url)
    return parts.password is not None or any(key == "password" for key, _ in parse_qsl(parts.query))


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///var/lib/x.db`` → ``/var/lib/x.db`` (``sqlite:////var/lib/x.db`` too)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite":
        raise ValueError(
            "expected sqlite:///ABSOLUTE/PATH, sqlite:///:memory: or "
            "postgresql://USER@HOST:PORT/DATABASE"
        )
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
