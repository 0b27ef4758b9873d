"""The URLs of the publishing API, spelled once for the route tables and the links.

The SDK is link-driven (digest §1.0), so a link and the route that serves it must never
disagree: both are built from these.
"""

from __future__ import annotations

from urllib.parse import quote

API = "/api/publishing/v1"


def revision_path(fourfour: str, seq: int | str) -> str:
    return f"{API}/revision/{fourfour}/{seq}"


def source_path(source_id: int | str) -> str:
    return f"{API}/source/{source_id}"


def config_path(name: str) -> str:
    """A config's URL; the name is percent-encoded (the router decodes it again)."""
    return f"{API}/config/{quote(name, safe='')}"
