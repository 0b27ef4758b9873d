"""The archive of a dataset's closed revisions (R16), and the websocket token (R15).

``GET /revision/{ff}/changes?limit=&cursor=`` lists what R12 can restore, newest
first: every applied revision (restorable while the dataset exists) and every
discarded one still inside its window (``restorable_until``, ``--keep-discarded``).
Pages are ``{"resource": [...], "meta": {"next": cursor}}`` as the digest gives them;
``next`` is null on the last page.

R15 (``/revision/{ff}/token``) serves the Phoenix websocket, which this server does
not have; it answers a 404 that says so, instead of the misleading "revision token"
error the revision route would otherwise give. These routes are registered before
the revision routes, whose ``{ff}/{seq}`` pattern would match them too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from dsmsyncd.server.catalog import revisions
from dsmsyncd.server.catalog.metastore import Doc, Kind
from dsmsyncd.server.errors import ApiError, bad_field
from dsmsyncd.server.fields import is_digits
from dsmsyncd.server.http import access
from dsmsyncd.server.http.bodies import json_reply
from dsmsyncd.server.http.paths import API, revision_path
from dsmsyncd.server.state import STATE

DEFAULT_PAGE = 50
MAX_PAGE = 1000


def _page_size(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_PAGE))
    if not is_digits(raw) or not 0 < int(raw) <= MAX_PAGE:
        raise bad_field("limit", f"expected a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _cursor(request: web.Request) -> int | None:
    raw = request.query.get("cursor")
    if raw in (None, ""):
        return None
    if not is_digits(raw):
        raise bad_field("cursor", "expected the 'next' value of the previous page")
    return int(raw)


def archive_entry(revision: Doc, until: dt.datetime | None) -> dict[str, Any]:
    """One restorable revision: what it was, until when it can be restored, and how."""
    base = revision_path(revision["fourfour"], int(revision["revision_seq"]))
    return {
        "fourfour": revision["fourfour"],
        "revision_seq": revision["revision_seq"],
        "status": "discarded" if revisions.is_discarded(revision) else "applied",
        "closed_at": revision["closed_at"],
        "restorable_until": until.isoformat(timespec="microseconds") if until else None,
        "action": revision["action"],
        "metadata": revision.get("metadata") or {},
        "links": {"show": base, "restore": f"{base}/restore"},
    }


async def list_changes(request: web.Request) -> web.Response:
    """R16: the dataset's restorable revisions, newest first, a page at a time."""
    fourfour = request.match_info["fourfour"]
    access.check_write(request, fourfour)
    state = request.app[STATE]
    limit, cursor = _page_size(request), _cursor(request)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    entries = []
    found = state.meta.children(Kind.REVISION, fourfour)
    for revision in sorted(found, key=lambda r: int(r["revision_seq"]), reverse=True):
        if not revisions.is_closed(revision):
            continue
        if cursor is not None and int(revision["revision_seq"]) >= cursor:
            continue
        until = revisions.restorable_until(revision, state.keep_discarded_seconds)
        if until is None or until > now:
            entries.append(archive_entry(revision, until))
    page = entries[:limit]
    more = len(entries) > limit
    next_cursor = str(page[-1]["revision_seq"]) if more else None
    return json_reply({"resource": page, "meta": {"next": next_cursor}})


async def websocket_token(request: web.Request) -> web.Response:
    """R15: not served (no websocket here)."""
    raise ApiError(
        404,
        f"not implemented on the local server: {request.method} {request.path} (the "
        "token is for the revision websocket, which this server does not serve; poll "
        "the revision and its apply job instead)",
        key="not_implemented",
    )


def register(app: web.Application) -> None:
    base = f"{API}/revision/{{fourfour}}"
    app.router.add_get(f"{base}/changes", list_changes)
    app.router.add_get(f"{base}/token", websocket_token)
